"""Choosing one of several OpenAI-compatible endpoints: least outstanding requests, with health.

:class:`EndpointBalancer` owns a client's endpoints. Each attempt :meth:`~EndpointBalancer.acquire`
s the healthy endpoint with the fewest requests in flight (equal loads are broken by a rotating
order, so sequential requests still go round-robin) and :meth:`~EndpointBalancer.release` s it
afterwards with the outcome. A transient failure (connection or transport error, time-out,
HTTP 429 or 5xx) takes the endpoint out of rotation for a cool-down, with one logged warning
per outage; a successful answer puts it back at once. When every endpoint is cooling down the
one whose cool-down ends first is used anyway: the balancer never stops a run by itself, the
client's bounded retries decide when a request fails.

The balancer is meant for one asyncio event loop: :meth:`acquire` and :meth:`release` never
await, so no lock is needed (it is not thread-safe).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import httpx

logger = logging.getLogger(__name__)

ENDPOINT_COOLDOWN_S = 5.0
"""Seconds an endpoint is skipped after a transient failure.

A few seconds: longer than the first back-off delays of a request's retries (0.5 s, 1 s, 2 s
by default), so those retries go to the other endpoints instead of back to the failing one,
and about the time a load balancer or supervisor takes to notice a vLLM server restarting or
shedding load (HTTP 429/503). Short enough that a server which recovers gets traffic again
soon; a server that stays down costs only one failed (and retried) attempt per cool-down.
"""


def redact_url(url: str) -> str:
    """``url`` without any ``user:password@`` part, fit for messages."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(userinfo=b"")) if parsed.userinfo else url


@dataclass
class _EndpointState:
    """Book-keeping of one endpoint."""

    url: str
    outstanding: int = 0
    """Requests acquired and not yet released."""
    retry_at: float = -math.inf
    """Clock time from which the endpoint is eligible again (``-inf``: healthy)."""
    failing: bool = False
    """A transient failure was seen and no success since (the warning was logged)."""


class EndpointBalancer:
    """Least-outstanding-requests choice among endpoints, skipping unhealthy ones.

    Args:
        endpoints: the endpoint URLs (duplicates are merged: one URL is one server).
        cooldown_s: how long an endpoint is skipped after a transient failure.
        clock: a monotonic clock in seconds (injectable for tests).
    """

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        cooldown_s: float = ENDPOINT_COOLDOWN_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(endpoints, str):
            raise TypeError("endpoints must be a sequence of URLs, not a single string")
        urls = list(dict.fromkeys(endpoints))
        if not urls:
            raise ValueError("EndpointBalancer needs at least one endpoint")
        if not math.isfinite(cooldown_s) or cooldown_s < 0:
            raise ValueError(f"cooldown_s must be a finite number >= 0, got {cooldown_s}")
        self.cooldown_s = float(cooldown_s)
        self._clock = clock
        self._states = [_EndpointState(url) for url in urls]
        self._by_url = {state.url: state for state in self._states}
        self._cursor = 0
        """Index where the rotating tie-break starts next time."""

    @property
    def endpoints(self) -> list[str]:
        """The endpoint URLs, in the order given."""
        return [state.url for state in self._states]

    def outstanding(self, endpoint: str) -> int:
        """Requests in flight at ``endpoint``."""
        return self._state(endpoint).outstanding

    def is_healthy(self, endpoint: str) -> bool:
        """Whether ``endpoint`` is in rotation now (not cooling down after a failure)."""
        return self._clock() >= self._state(endpoint).retry_at

    def acquire(self, exclude: Collection[str] = ()) -> str:
        """Take an endpoint for one attempt; the caller must :meth:`release` it.

        The choice, in order of preference: a healthy endpoint not in ``exclude`` (the ones
        this request already tried), then any healthy endpoint, then, when all are cooling
        down, the one whose cool-down ends first. Within a tier the fewest outstanding
        requests win, and ties go to the next endpoint in a rotating order.
        """
        now = self._clock()
        count = len(self._states)
        rotation = [self._states[(self._cursor + i) % count] for i in range(count)]
        healthy = [state for state in rotation if now >= state.retry_at]
        fresh = [state for state in healthy if state.url not in exclude]
        if fresh or healthy:
            chosen = min(fresh or healthy, key=lambda state: state.outstanding)
        else:
            chosen = min(
                rotation,
                key=lambda state: (state.retry_at, state.url in exclude, state.outstanding),
            )
        chosen.outstanding += 1
        self._cursor = (self._states.index(chosen) + 1) % count
        return chosen.url

    def release(self, endpoint: str, ok: bool | None, cause: str = "") -> None:
        """Give back an endpoint taken by :meth:`acquire`, with the attempt's outcome.

        Args:
            endpoint: the URL :meth:`acquire` returned.
            ok: ``True`` when the endpoint answered successfully (it is healthy again at once),
                ``False`` on a transient failure (it is skipped for ``cooldown_s``; the first
                failure of an outage logs a warning with ``cause``), ``None`` when the attempt
                says nothing about the endpoint's health (cancelled, or a request error).
            cause: why the attempt failed, for the warning (never holds credentials).
        """
        state = self._state(endpoint)
        if state.outstanding <= 0:
            raise RuntimeError(f"release of {redact_url(endpoint)} without a matching acquire")
        state.outstanding -= 1
        if ok is None:
            return
        if ok:
            if state.failing:
                logger.info("LLM endpoint %s answers again; back in rotation", redact_url(endpoint))
            state.failing = False
            state.retry_at = -math.inf
            return
        state.retry_at = self._clock() + self.cooldown_s
        if state.failing:
            logger.debug(
                "LLM endpoint %s still failing (%s); skipped for another %.3gs",
                redact_url(endpoint),
                cause,
                self.cooldown_s,
            )
            return
        state.failing = True
        logger.warning(
            "LLM endpoint %s is unhealthy (%s); it is skipped for %.3gs while another is healthy",
            redact_url(endpoint),
            cause,
            self.cooldown_s,
        )

    def _state(self, endpoint: str) -> _EndpointState:
        try:
            return self._by_url[endpoint]
        except KeyError:
            raise KeyError(f"unknown endpoint {redact_url(endpoint)!r}") from None
