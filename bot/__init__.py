"""rollback-bot: the emergency rollback runbook as a guided, audited Slack workflow."""

__version__ = "0.2.0"
