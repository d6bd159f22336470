"""HTTP health checks, each with its own timeout and measured latency."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Probe:
    url: str
    ok: bool
    status: int | None
    seconds: float
    detail: str


def probe(url: str, *, timeout: float, expect_json: dict[str, Any] | None = None, expect_status: int | None = None,
          bearer: str | None = None, slow_after: float | None = None) -> Probe:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - configured URL
    if bearer:
        request.add_header("Authorization", f"Bearer {bearer}")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, body = response.status, response.read(64 * 1024)
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read(64 * 1024)
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        return Probe(url, False, None, time.monotonic() - started, f"no answer: {reason}")
    seconds = time.monotonic() - started
    text = body.decode("utf-8", "replace")
    problems = []
    if expect_status is not None and status != expect_status:
        problems.append(f"status {status}, expected {expect_status}")
    elif expect_status is None and not 200 <= status < 300:
        problems.append(f"status {status}")
    if expect_json is not None:
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict) or any(parsed.get(k) != v for k, v in expect_json.items()):
            problems.append(f"body {text[:80]!r}, expected {json.dumps(expect_json)}")
    if slow_after is not None and seconds > slow_after:
        problems.append(f"took {seconds:.2f}s, over the {slow_after:g}s threshold")
    return Probe(url, not problems, status, seconds, "; ".join(problems) or f"status {status}")
