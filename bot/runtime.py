"""Wiring: the services the handlers use, the Bolt app, and the two delivery modes."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.access import Access
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.incident import Incident, StepRun
from bot.service import RollbackService
from bot.slack import SlackDirectory, SlackMessenger, web_client
from bot.store import Store, open_store

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_bolt.adapter.socket_mode import SocketModeHandler

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    store: Store
    rollback: RollbackService
    messenger: SlackMessenger
    clock: Clock
    worker: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=16, thread_name_prefix="rollback-worker"))
    scheduler: Any = None  # apscheduler BackgroundScheduler

    def close(self) -> None:
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.worker.shutdown(wait=True, cancel_futures=False)
        self.rollback.close()
        self.store.close()


def build_services(settings: Settings, *, store: Store | None = None, clock: Clock | None = None) -> Services:
    from bot import ui

    clock = clock or SystemClock()
    token = settings.secrets.slack_bot_token.get_secret_value() if settings.secrets.slack_bot_token else None
    client = web_client(token, settings.api_url)
    store = store or open_store(
        settings.secrets.state_store_uri.get_secret_value() if settings.secrets.state_store_uri else None,
        settings.data_dir,
    )
    messenger = SlackMessenger(client)
    access = Access(settings.runbook.access, SlackDirectory(client))
    target = settings.runbook.target.rollback_target

    def render_panel(incident: Incident, runs: list[StepRun]) -> tuple[str, list[dict[str, Any]]]:
        return ui.panel(incident, runs, target)

    service = RollbackService(settings, store, messenger, access, clock, render_panel)
    service.recover()
    return Services(settings=settings, store=store, rollback=service, messenger=messenger, clock=clock,
                    scheduler=start_scheduler(service))


def start_scheduler(service: RollbackService) -> Any:
    """APScheduler runs the periodic jobs; each job also takes a store lease, so replicas run it once."""
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1,
                                                                   "misfire_grace_time": 60})
    scheduler.add_job(service.comms.tick, "interval", seconds=60, jitter=5, id="comms-reminder",
                      name="stakeholder update reminder")
    monitor = service.config.monitor
    if monitor.enabled:
        scheduler.add_job(service.monitor.run_once, "interval", seconds=monitor.interval_s, jitter=monitor.jitter_s,
                          id="health-checks", name="scheduled health checks")
    scheduler.start()
    return scheduler


def build_app(services: Services, *, socket_mode: bool) -> App:
    """The Bolt app. It only builds the App and registers the listeners."""
    from slack_bolt import App

    from handlers import register_all

    secrets = services.settings.secrets
    signing = secrets.slack_signing_secret.get_secret_value() if secrets.slack_signing_secret else None
    app = App(
        client=services.messenger.client,
        signing_secret=signing,
        request_verification_enabled=not socket_mode,
        token_verification_enabled=False,
        raise_error_for_unhandled_request=False,
        ignoring_self_events_enabled=True,
    )
    register_all(app, services)
    return app


@dataclass
class SocketModeBot:
    """The bot connected over Socket Mode; start() returns once connected, close() disconnects."""

    services: Services
    app: App
    handler: SocketModeHandler | None = None
    _closed: threading.Event = field(default_factory=threading.Event)

    def start(self, concurrency: int = 10) -> SocketModeBot:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        token = self.services.settings.secrets.slack_app_token
        assert token is not None
        self.handler = SocketModeHandler(self.app, token.get_secret_value(), web_client=self.services.messenger.client,
                                         concurrency=concurrency, ping_interval=5)
        self.handler.connect()
        return self

    def wait(self) -> None:
        self._closed.wait()

    def close(self) -> None:
        if self.handler is not None:
            self.handler.close()
        self.services.close()
        self._closed.set()


def socket_mode_bot(settings: Settings, **kwargs: object) -> SocketModeBot:
    settings.require("slack_bot_token", "slack_app_token")
    services = build_services(settings, **kwargs)  # type: ignore[arg-type]
    return SocketModeBot(services, build_app(services, socket_mode=True))


class HttpBot:
    """The bot behind Bolt's /slack/events over a threaded WSGI server (waitress)."""

    def __init__(self, settings: Settings, host: str = "127.0.0.1", port: int = 3000, **kwargs: object) -> None:
        from slack_bolt.adapter.wsgi import SlackRequestHandler
        from waitress.server import create_server

        settings.require("slack_bot_token", "slack_signing_secret")
        self.services = build_services(settings, **kwargs)  # type: ignore[arg-type]
        self.app = build_app(self.services, socket_mode=False)
        handler = SlackRequestHandler(self.app)

        def wsgi(environ, start_response):
            if environ.get("PATH_INFO") not in ("/slack/events",):
                start_response("404 Not Found", [("Content-Type", "text/plain")])
                return [b"not found: Slack requests go to /slack/events\n"]
            return handler(environ, start_response)

        self.server = create_server(wsgi, host=host, port=port, threads=16, ident="rollback-bot")
        self.port = int(self.server.effective_port)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    def start(self) -> HttpBot:
        self._thread = threading.Thread(target=self.serve_forever, name="rollback-bot-http", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        from waitress import wasyncore

        while not self._stop.is_set():  # short polls, so close() stops it at once
            wasyncore.loop(timeout=0.1, map=self.server._map, count=1)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.server.close()
        self.server.task_dispatcher.shutdown()
        self.services.close()
