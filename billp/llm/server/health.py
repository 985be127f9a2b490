"""Readiness of a starting vLLM server: poll ``GET /health`` until it answers 200 or time runs
out, checking before each probe that the server has not died.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import httpx

HEALTH_PATH = "/health"
HEALTH_POLL_S = 0.2
HEALTH_REQUEST_TIMEOUT_S = 2.0


def wait_healthy(url: str, deadline: float, check_exited: Callable[[], None]) -> bool:
    """Poll ``url`` until it answers 200 (``True``) or ``time.monotonic()`` passes ``deadline``
    (``False``); ``check_exited`` runs before each probe and raises if the server died."""
    with httpx.Client(timeout=HEALTH_REQUEST_TIMEOUT_S, trust_env=False) as client:
        while time.monotonic() < deadline:
            check_exited()
            with contextlib.suppress(httpx.HTTPError):
                if client.get(url).status_code == httpx.codes.OK:
                    return True
            time.sleep(max(0.0, min(HEALTH_POLL_S, deadline - time.monotonic())))
    return False


async def await_healthy(url: str, deadline: float, check_exited: Callable[[], None]) -> bool:
    """Async :func:`wait_healthy`."""
    async with httpx.AsyncClient(timeout=HEALTH_REQUEST_TIMEOUT_S, trust_env=False) as client:
        while time.monotonic() < deadline:
            check_exited()
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == httpx.codes.OK:
                    return True
            await asyncio.sleep(max(0.0, min(HEALTH_POLL_S, deadline - time.monotonic())))
    return False
