"""Development tooling: what runs the bot on one machine without Slack, a server or a target, and what the
tests and benchmarks drive it with. Never product code, and never in the wheel (pyproject's hatch config
excludes ``bot/dev``): ``make local`` and ``make test`` use the checkout's editable install, which has it.

- ``bot.dev.emulator``: a local Slack (Web API, Socket Mode, signed HTTP, the browser page).
- ``bot.dev.localmongo``: a local MongoDB-protocol server (nx-27017) as a child or detached process.
- ``bot.dev.sandbox``: a runbook-like target (a broken Node backend in git, pm2 apps, tenant databases).
- ``bot.dev.local``: ``rollback-bot local``'s folder and terminal prompt.
- ``bot.dev.fakeclock``: a clock that only moves when a test moves it.

The product imports nothing from here at module level: the CLI's ``emulator``, ``sandbox`` and ``local``
subcommands import it when they run, and say it is development tooling where it is missing."""
