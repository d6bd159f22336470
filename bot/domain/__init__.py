"""The domain: what an incident is, what each runbook action decides and records, and who owns running work.

Nothing here imports Slack (``slack_bolt``/``slack_sdk``) or the presenter (``bot.slack_ui``): services
receive one typed bundle of ports (:class:`bot.domain.deps.Deps`), return typed results, and hand
typed notices to the presenter port to be turned into messages. An AST test keeps it that way.
"""
