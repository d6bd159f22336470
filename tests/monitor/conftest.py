"""A real HTTP backend for the scheduled checks, whose behaviour a test flips."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


class Backend:
    """A real HTTP server: `mode` is ok, 500, slow (over the threshold), slow500 (both) or hung (past the check
    timeout)."""

    def __init__(self, slow_s: float = 0.6, hung_s: float = 4.0) -> None:
        self.mode = "ok"  # for /api/health; `paths` overrides it per path
        self.paths: dict[str, str] = {}
        self.requests: list[tuple[str, float]] = []
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server's name
                backend.requests.append((self.path, time.monotonic()))
                mode = backend.paths.get(self.path, backend.mode)
                if mode == "hung":
                    time.sleep(hung_s)
                elif mode in ("slow", "slow500"):
                    time.sleep(slow_s)
                status = 500 if mode in ("500", "slow500") else 200
                body = json.dumps({"status": "ok"} if status == 200 else {"status": "error"}).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up on a hung request

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def backend() -> Iterator[Backend]:
    server = Backend()
    yield server
    server.close()
