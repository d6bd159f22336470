"""A Slack Web API client that retries 429 (honouring Retry-After), 5xx and dropped connections."""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)


def web_client(token: str | None, base_url: str, *, retries: int = 3, timeout: int = 15,
               logger: logging.Logger | None = None) -> WebClient:
    """``logger``: where slack_sdk logs each request and failed attempt (default: its own module logger)."""
    return WebClient(
        token=token,
        base_url=base_url,
        timeout=timeout,
        logger=logger,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=retries),
            RateLimitErrorRetryHandler(max_retry_count=retries),
            ServerErrorRetryHandler(max_retry_count=retries),
        ],
    )
