"""A Slack Web API client that retries, within bounds: 429 honouring Retry-After, 5xx, timeouts and dropped
connections.

slack_sdk's own retry handlers do the retrying; the ones here only bound them. Every call runs after its
ack, so waiting cannot make an ack late, but it holds a worker: a call gives up once its retries would wait
past ``budget_s`` in total (a Retry-After longer than what is left is not waited for at all) and the caller's
best-effort path takes over (a redraw catches up at the next change, a danger run carries on).

An optional :class:`CallObserver` hears of every call's outcome and every retry (the bot's metrics, and its
readiness in HTTP mode: whether Slack answered the last call).
"""

from __future__ import annotations

import logging
import random
import time
from http.client import RemoteDisconnected
from typing import Any, Protocol
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web import SlackResponse

RETRIES = 3
# A 429 is retried more often (still within the budget): chat.postMessage's ~1/s per channel is shared with the
# bot's own other posts in that channel (a danger run's progress, thread notes), so a post can lose a few turns.
RATE_LIMIT_RETRIES = 8
BUDGET_S = 10.0  # the most one call waits between its attempts, all retries together
TIMEOUT_S = 15  # one attempt


class CallObserver(Protocol):
    """Told of each Web API call's end and each retry; it must not block (it runs on the caller's thread)."""

    def api_call(self, method: str, error: str | None, reached: bool) -> None:
        """A call ended: ``error`` None when Slack said ok, else its error code (``ratelimited``, ``not_in_channel``,
        ``http_503``, ``unreachable``…); ``reached``: whether Slack answered at all (a 5xx or no answer: False)."""
        ...

    def api_retry(self, method: str, reason: str) -> None:
        """A call is tried again: ``ratelimited``, ``server_error`` or ``connection``."""
        ...


def _method(request: HttpRequest) -> str:
    return request.url.rstrip("/").rsplit("/", 1)[-1]


def _retry_after(response: HttpResponse | None) -> float | None:
    if response is None:
        return None
    for name, values in response.headers.items():
        if name.lower() == "retry-after" and values:
            try:
                return max(0.0, float(values[0]))
            except ValueError:
                return None
    return None


class _Budget:
    """The wait shared by every handler of one call (slack_sdk gives each call its own RetryState)."""

    def __init__(self, budget_s: float, observer: CallObserver | None = None) -> None:
        self.budget_s = budget_s
        self.observer = observer

    def retrying(self, request: HttpRequest, reason: str) -> None:
        if self.observer is not None:
            self.observer.api_retry(_method(request), reason)

    def left(self, state: RetryState) -> float:
        values = state.custom_values if state.custom_values is not None else {}
        return self.budget_s - float(values.get("waited_s", 0.0))

    def wait(self, state: RetryState, seconds: float) -> None:
        if state.custom_values is None:
            state.custom_values = {}
        state.custom_values["waited_s"] = float(state.custom_values.get("waited_s", 0.0)) + seconds
        time.sleep(seconds)
        state.next_attempt_requested = True
        state.increment_current_attempt()


class BoundedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """429: wait what Retry-After says (plus a little jitter), unless that is more than the budget left."""

    def __init__(self, budget: _Budget, max_retry_count: int) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.budget = budget

    def _wait_s(self, response: HttpResponse | None) -> float:
        after = _retry_after(response)
        return (1.0 if after is None else after) + random.uniform(0, 0.25)  # jitter, not crypto

    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                   error: Exception | None = None) -> bool:
        return (super()._can_retry(state=state, request=request, response=response, error=error)
                and self._wait_s(response) - 0.25 <= self.budget.left(state))

    def prepare_for_next_attempt(self, *, state: RetryState, request: HttpRequest,
                                 response: HttpResponse | None = None, error: Exception | None = None) -> None:
        self.budget.retrying(request, "ratelimited")
        self.budget.wait(state, min(self._wait_s(response), max(0.0, self.budget.left(state))))


class _Backoff(RetryHandler):
    """Exponential backoff (0.5 s, 1 s, 2 s…) with jitter, inside the call's budget; a Retry-After is honoured."""

    budget: _Budget

    def _wait_s(self, state: RetryState, response: HttpResponse | None) -> float:
        after = _retry_after(response)
        if after is not None:
            return after
        return 0.5 * (2 ** state.current_attempt) * random.uniform(0.8, 1.2)  # jitter

    def can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                  error: Exception | None = None) -> bool:
        return (super().can_retry(state=state, request=request, response=response, error=error)
                and self._wait_s(state, response) <= self.budget.left(state))

    def prepare_for_next_attempt(self, *, state: RetryState, request: HttpRequest,
                                 response: HttpResponse | None = None, error: Exception | None = None) -> None:
        self.budget.retrying(request, "server_error" if response is not None else "connection")
        self.budget.wait(state, min(self._wait_s(state, response), max(0.0, self.budget.left(state))))


class BoundedServerErrorRetryHandler(_Backoff, ServerErrorRetryHandler):
    """Any 5xx but 501 (slack_sdk's own handler knows only 500 and 503; gateways answer 502 and 504)."""

    def __init__(self, budget: _Budget, max_retry_count: int) -> None:
        ServerErrorRetryHandler.__init__(self, max_retry_count=max_retry_count)
        self.budget = budget

    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                   error: Exception | None = None) -> bool:
        return response is not None and 500 <= response.status_code < 600 and response.status_code != 501


class BoundedConnectionErrorRetryHandler(_Backoff, ConnectionErrorRetryHandler):
    """Dropped connections, as slack_sdk's handler, and timeouts too (a read timeout is no URLError).

    Except a post that may have reached Slack: a ``chat.postMessage`` whose answer timed out or whose connection
    dropped after it was sent may well be in the channel, and sending it again would post it twice. Only a
    connection that was refused (nothing was sent) is tried again; otherwise the caller decides — a keyed post
    (a stakeholder update, a request) stays claimed and is looked up in the channel's history before it is sent
    again (:mod:`bot.domain.stakeholders`)."""

    def __init__(self, budget: _Budget, max_retry_count: int) -> None:
        ConnectionErrorRetryHandler.__init__(self, max_retry_count=max_retry_count, error_types=[
            URLError, ConnectionError, RemoteDisconnected, TimeoutError])
        self.budget = budget

    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                   error: Exception | None = None) -> bool:
        if request.url.rstrip("/").endswith(NOT_REPEATED) and not _never_sent(error):
            return False
        return super()._can_retry(state=state, request=request, response=response, error=error)


NOT_REPEATED = ("chat.postMessage",)  # methods whose second attempt could double what the first one did


def _never_sent(error: Exception | None) -> bool:
    reason = error.reason if isinstance(error, URLError) else error
    return isinstance(reason, ConnectionRefusedError)


def retry_handlers(*, retries: int = RETRIES, budget_s: float = BUDGET_S,
                   observer: CallObserver | None = None) -> list[RetryHandler]:
    budget = _Budget(budget_s, observer)
    return [BoundedConnectionErrorRetryHandler(budget, retries),
            BoundedRateLimitRetryHandler(budget, RATE_LIMIT_RETRIES if retries >= RETRIES else retries),
            BoundedServerErrorRetryHandler(budget, retries)]


class ObservedWebClient(WebClient):
    """A WebClient that tells its observer how each call ended (after slack_sdk's retries)."""

    observer: CallObserver | None = None

    def api_call(self, api_method: str, *args: Any, **kwargs: Any) -> SlackResponse:
        observer = self.observer
        if observer is None:
            return super().api_call(api_method, *args, **kwargs)
        try:
            response = super().api_call(api_method, *args, **kwargs)
        except SlackApiError as error:
            status = error.response.status_code
            code = error.response.get("error") if status < 500 else None
            observer.api_call(api_method, str(code or f"http_{status}"), status < 500)
            raise
        except Exception:
            observer.api_call(api_method, "unreachable", False)
            raise
        observer.api_call(api_method, None, True)
        return response


def web_client(token: str | None, base_url: str, *, retries: int = RETRIES, timeout: int = TIMEOUT_S,
               budget_s: float = BUDGET_S, logger: logging.Logger | None = None,
               observer: CallObserver | None = None) -> WebClient:
    """``logger``: where slack_sdk logs each request and failed attempt (default: its own module logger).
    Bolt copies these handlers into the client it gives listeners, so ``say`` and ``respond``… retry alike (and
    their retries are observed; their outcomes are not: Bolt's per-request client is a plain WebClient)."""
    client = ObservedWebClient(token=token, base_url=base_url, timeout=timeout, logger=logger,
                               retry_handlers=retry_handlers(retries=retries, budget_s=budget_s, observer=observer))
    client.observer = observer
    return client
