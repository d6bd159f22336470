"""HTTP health checks: one at a time for a step (``probe``), or many at once for the scheduled checks
(``probe_many``: asyncio + aiohttp, bounded concurrency, each check's time limit counted from its own
start and covering connect, headers and body, so a hung endpoint fails alone and never delays the others).

``probe_many`` keeps connections alive and reuses them per host for the rest of the round (aiohttp's pool),
so 1,000 checks on one host open about ``concurrency`` connections, not 1,000. A kept-alive connection the
server has just closed is not a failure: a GET whose **reused** connection drops is tried once more on a new
connection, within the same time limit (RFC 9112, 9.3.1), and the check's detail says so. A drop on a new
connection is an answer about the server, never retried: a backend whose workers die under requests is down,
not up on a third try. (aiohttp's own retry, which does not tell the two apart, is turned off.)
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from contextvars import ContextVar
from dataclasses import dataclass, replace
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # aiohttp is imported with the first round of checks: a bot that is idle has no need of it
    import aiohttp
    from aiohttp.client_reqrep import ClientRequest
    from aiohttp.connector import Connection
    from aiohttp.tracing import Trace

MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class Probe:
    url: str
    ok: bool
    status: int | None
    seconds: float
    detail: str
    answered_right: bool = False  # the status and body were as expected (it may still have been too slow)


@dataclass(frozen=True)
class HttpCheck:
    url: str
    expect_json: dict[str, Any] | None = None
    expect_status: int | None = None
    bearer: str | None = None
    slow_after: float | None = None

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.bearer:
            headers["Authorization"] = f"Bearer {self.bearer}"
        return headers


def _judge(check: HttpCheck, status: int, body: bytes, seconds: float) -> Probe:
    text = body.decode("utf-8", "replace")
    problems = []
    if check.expect_status is not None and status != check.expect_status:
        problems.append(f"status {status}, expected {check.expect_status}")
    elif check.expect_status is None and not 200 <= status < 300:
        problems.append(f"status {status}")
    if check.expect_json is not None:
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict) or any(parsed.get(k) != v for k, v in check.expect_json.items()):
            problems.append(f"body {text[:80]!r}, expected {json.dumps(check.expect_json)}")
    answered_right = not problems
    if check.slow_after is not None and seconds > check.slow_after:
        problems.append(f"took {seconds:.2f}s, over the {check.slow_after:g}s threshold")
    return Probe(check.url, not problems, status, seconds, "; ".join(problems) or f"status {status}", answered_right)


def probe(url: str, *, timeout: float, expect_json: dict[str, Any] | None = None, expect_status: int | None = None,
          bearer: str | None = None, slow_after: float | None = None) -> Probe:
    """One check, blocking, with a total deadline of ``timeout`` seconds."""
    check = HttpCheck(url, expect_json, expect_status, bearer, slow_after)
    request = urllib.request.Request(url, headers=check.headers())  # noqa: S310 - a configured URL
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, body = response.status, response.read(MAX_BODY)
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read(MAX_BODY)
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        return Probe(url, False, None, time.monotonic() - started, f"no answer: {reason}")
    return _judge(check, status, body, time.monotonic() - started)


async def _get(session: aiohttp.ClientSession, check: HttpCheck) -> tuple[int, bytes]:
    async with session.get(check.url, headers=check.headers(), allow_redirects=False) as response:
        return response.status, await response.content.read(MAX_BODY)


# Whether the current check's last request went out on a kept-alive connection: set by the session's connector
# as it hands the connection over, read by the check's own task (each check runs in a task of its own, with its
# own copy of the context).
_reused: ContextVar[bool] = ContextVar("reused", default=False)


async def _probe_async(pooled: aiohttp.ClientSession, fresh: aiohttp.ClientSession, check: HttpCheck,
                       timeout: float) -> Probe:
    import aiohttp

    started = time.monotonic()
    retried = False
    try:
        async with asyncio.timeout(timeout):
            try:
                _reused.set(False)
                status, body = await _get(pooled, check)
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as error:
                if isinstance(error, aiohttp.ClientConnectorError) or not _reused.get():
                    raise  # no connection at all, or a new one the server dropped: that is the server's answer
                # A kept-alive connection the server closed as it was reused: once more, on a new one.
                retried = True
                status, body = await _get(fresh, check)
    except TimeoutError:
        return Probe(check.url, False, None, time.monotonic() - started, f"no answer within {timeout:g}s (hung)")
    except (aiohttp.ClientError, OSError, ValueError) as error:
        return Probe(check.url, False, None, time.monotonic() - started, f"no answer: {error}"[:200])
    judged = _judge(check, status, body, time.monotonic() - started)
    if retried:
        return replace(judged, detail=judged.detail + " (on a new connection: the kept-alive one was dropped)")
    return judged


@cache
def _connector_class() -> type[aiohttp.TCPConnector]:
    """aiohttp's connector, noting in ``_reused`` whether the connection it hands over has been handed over
    before (a connection's ``protocol`` lives as long as its socket). ``connect`` is the public method every
    request gets its connection from; tests/ops/test_probe_reuse.py fails if a new aiohttp stops calling it.
    Not a ``TraceConfig``: with one, aiohttp builds trace objects and fires half a dozen signals for every
    request, whichever it listens to, about a tenth of the checks' CPU at 1,000 endpoints."""
    import aiohttp

    class NotingReuse(aiohttp.TCPConnector):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._handed: set[object] = set()  # the connections of this session's round: a few hundred at most

        async def connect(self, req: ClientRequest, traces: list[Trace], timeout: aiohttp.ClientTimeout,
                          ) -> Connection:
            connection = await super().connect(req, traces, timeout)
            reused = connection.protocol in self._handed
            if not reused:
                self._handed.add(connection.protocol)
            _reused.set(reused)
            return connection

    return NotingReuse


def _session(limit: int, *, force_close: bool) -> aiohttp.ClientSession:
    """A session whose connector notes in ``_reused`` whether a request's connection was reused, and that never
    retries by itself (``_probe_async`` decides)."""
    import aiohttp

    connector = _connector_class()(limit=limit, force_close=force_close)
    # No session time limit: each check's asyncio.timeout is its limit.
    session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None))
    # aiohttp retries an idempotent request once whatever the connection, and its API has no switch for it
    # (tests/ops/test_probe_reuse.py fails if a new aiohttp renames this).
    session._retry_connection = False
    return session


def probe_many(checks: list[HttpCheck], *, timeout: float, concurrency: int) -> list[Probe]:
    """Every check, at most ``concurrency`` at a time, each limited to ``timeout`` from its own start."""
    if not checks:
        return []

    async def main() -> list[Probe]:
        gate = asyncio.Semaphore(concurrency)
        pooled, fresh = _session(concurrency, force_close=False), _session(concurrency, force_close=True)
        async with pooled, fresh:
            async def one(check: HttpCheck) -> Probe:
                async with gate:
                    return await _probe_async(pooled, fresh, check, timeout)

            return list(await asyncio.gather(*(one(check) for check in checks)))

    return asyncio.run(main())
