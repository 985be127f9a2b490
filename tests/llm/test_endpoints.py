"""EndpointBalancer: least outstanding requests, rotating ties, unhealthy endpoints skipped."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

import httpx
import pytest

from billp.llm import ChatMessage, LLMRequest, OpenAICompatibleClient
from billp.llm import openai_client as oc
from billp.llm.endpoints import ENDPOINT_COOLDOWN_S, EndpointBalancer

A = "http://a.test/v1"
B = "http://b.test/v1"
C = "http://c.test/v1"
COOLDOWN_S = 10.0
BALANCER_LOGGER = "billp.llm.endpoints"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def balancer(clock: FakeClock, *urls: str) -> EndpointBalancer:
    return EndpointBalancer(list(urls) or [A, B, C], cooldown_s=COOLDOWN_S, clock=clock)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == BALANCER_LOGGER and record.levelno == logging.WARNING
    ]


def test_least_outstanding_endpoint_wins(clock: FakeClock) -> None:
    lb = balancer(clock)
    assert [lb.acquire(), lb.acquire()] == [A, B]
    assert lb.acquire() == C  # A and B each have one request in flight
    lb.release(B, ok=True)
    assert lb.acquire() == B  # B is down to 0 while A and C hold 1
    assert [lb.outstanding(url) for url in (A, B, C)] == [1, 1, 1]


def test_equal_loads_rotate_round_robin(clock: FakeClock) -> None:
    lb = balancer(clock)
    chosen = []
    for _ in range(5):
        url = lb.acquire()
        chosen.append(url)
        lb.release(url, ok=True)
    assert chosen == [A, B, C, A, B]


def test_ties_rotate_among_the_least_loaded_only(clock: FakeClock) -> None:
    lb = balancer(clock)
    held = lb.acquire()  # A stays busy
    chosen = []
    for _ in range(4):
        url = lb.acquire()
        chosen.append(url)
        lb.release(url, ok=True)
    assert held == A and chosen == [B, C, B, C]


def test_exclude_prefers_endpoints_not_yet_tried(clock: FakeClock) -> None:
    lb = balancer(clock, A, B)
    lb.acquire()  # A
    lb.acquire()  # B
    lb.acquire()  # A again: A 2, B 1
    lb.release(A, ok=True)
    lb.release(A, ok=True)  # A 0, B 1
    assert lb.acquire(exclude=[A]) == B  # untried beats less loaded
    # everything tried: the least loaded healthy endpoint
    assert lb.acquire(exclude=[A, B]) == A


def test_failure_skips_endpoint_with_one_warning(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    lb = balancer(clock)
    with caplog.at_level(logging.WARNING, logger=BALANCER_LOGGER):
        url = lb.acquire()
        assert url == A
        lb.release(A, ok=False, cause="ConnectError: connection refused")
        assert not lb.is_healthy(A)
        chosen = []
        for _ in range(6):
            url = lb.acquire()
            chosen.append(url)
            lb.release(url, ok=True)
        assert A not in chosen and set(chosen) == {B, C}
    messages = warnings_of(caplog)
    assert len(messages) == 1
    assert A in messages[0] and "ConnectError: connection refused" in messages[0]


def test_failures_of_one_outage_warn_once(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    lb = balancer(clock, A, B)
    with caplog.at_level(logging.WARNING, logger=BALANCER_LOGGER):
        first, second = lb.acquire(exclude=[B]), lb.acquire(exclude=[B])
        assert first == second == A
        lb.release(A, ok=False, cause="HTTP 503: busy")
        lb.release(A, ok=False, cause="HTTP 503: busy")  # a second request in flight fails too
        clock.now += COOLDOWN_S  # probed again after the cool-down, still down
        assert lb.acquire(exclude=[B]) == A
        lb.release(A, ok=False, cause="HTTP 503: busy")
        assert len(warnings_of(caplog)) == 1
        # a success ends the outage; the next failure is a new one and warns again
        assert lb.acquire(exclude=[B]) == B
        lb.release(B, ok=True)
        clock.now += COOLDOWN_S
        lb.release(lb.acquire(exclude=[B]), ok=True)
        lb.release(lb.acquire(exclude=[B]), ok=False, cause="ReadTimeout")
    messages = warnings_of(caplog)
    assert len(messages) == 2 and "ReadTimeout" in messages[1]


def test_warning_redacts_credentials(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    secret_url = "http://user:hunter2@secret.test/v1"
    lb = EndpointBalancer([secret_url], cooldown_s=COOLDOWN_S, clock=clock)
    with caplog.at_level(logging.WARNING, logger=BALANCER_LOGGER):
        lb.release(lb.acquire(), ok=False, cause="ConnectError")
    (message,) = warnings_of(caplog)
    assert "hunter2" not in message and "http://secret.test/v1" in message


def test_all_unhealthy_uses_the_one_whose_cooldown_ends_first(clock: FakeClock) -> None:
    lb = balancer(clock)
    for url in (B, A, C):  # B fails first, so its cool-down ends first
        lb.acquire(exclude=[u for u in (A, B, C) if u != url])
        lb.release(url, ok=False, cause="HTTP 502")
        clock.now += 1.0
    assert not any(lb.is_healthy(url) for url in (A, B, C))
    assert lb.acquire() == B
    assert lb.acquire(exclude=[B]) == B  # no other choice is better: still the earliest
    assert lb.outstanding(B) == 2


def test_single_endpoint_is_used_even_when_unhealthy(clock: FakeClock) -> None:
    lb = balancer(clock, A)
    lb.release(lb.acquire(), ok=False, cause="HTTP 500")
    assert not lb.is_healthy(A)
    assert lb.acquire(exclude=[A]) == A


def test_success_restores_an_unhealthy_endpoint(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    lb = balancer(clock, A, B)
    assert lb.acquire() == A
    assert lb.acquire() == B
    assert lb.acquire(exclude=[A]) == B  # two requests in flight at B
    lb.release(B, ok=False, cause="HTTP 429")  # one is refused...
    assert not lb.is_healthy(B)
    with caplog.at_level(logging.INFO, logger=BALANCER_LOGGER):
        lb.release(B, ok=True)  # ...the other is answered: B is back at once
    assert lb.is_healthy(B)
    assert any("answers again" in record.getMessage() for record in caplog.records)
    lb.release(A, ok=True)
    assert [lb.acquire(), lb.acquire()] == [A, B]


def test_cooldown_expiry_restores_an_endpoint(clock: FakeClock) -> None:
    lb = balancer(clock, A, B)
    lb.release(lb.acquire(), ok=False, cause="ConnectError")
    failed_at = clock.now
    clock.now = failed_at + COOLDOWN_S - 0.001
    assert not lb.is_healthy(A)
    assert lb.acquire() == B
    lb.release(B, ok=True)
    clock.now = failed_at + COOLDOWN_S
    assert lb.is_healthy(A)
    assert lb.acquire() == A


def test_release_without_verdict_keeps_health(clock: FakeClock) -> None:
    lb = balancer(clock, A)
    lb.release(lb.acquire(), ok=None)  # e.g. cancelled, or HTTP 400
    assert lb.is_healthy(A) and lb.outstanding(A) == 0
    lb.release(lb.acquire(), ok=False, cause="HTTP 503")
    lb.release(lb.acquire(), ok=None)  # neither restores it
    assert not lb.is_healthy(A) and lb.outstanding(A) == 0


def test_release_errors_and_validation(clock: FakeClock) -> None:
    lb = balancer(clock, A, B)
    with pytest.raises(RuntimeError, match="without a matching acquire"):
        lb.release(A, ok=True)
    lb.acquire()
    with pytest.raises(KeyError, match="unknown endpoint"):
        lb.release("http://z.test/v1", ok=True)
    with pytest.raises(ValueError, match="at least one"):
        EndpointBalancer([])
    with pytest.raises(TypeError, match="sequence"):
        EndpointBalancer(A)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cooldown_s"):
        EndpointBalancer([A], cooldown_s=-1)


def test_duplicate_urls_are_one_endpoint(clock: FakeClock) -> None:
    lb = EndpointBalancer([A, B, A], clock=clock)
    assert lb.endpoints == [A, B]
    assert lb.cooldown_s == ENDPOINT_COOLDOWN_S


# --- the client balancing real requests (httpx.MockTransport) --------------------------------

COMPLETION = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}]}


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    async def skip_sleep(delay: float) -> None:
        return None

    monkeypatch.setattr(oc, "_backoff_sleep", skip_sleep)


def make_request() -> LLMRequest:
    return LLMRequest(role="actor", messages=[ChatMessage(role="user", content="pick")])


def two_endpoint_client(handler: Any, **kwargs: Any) -> OpenAICompatibleClient:
    return OpenAICompatibleClient(
        [A, B], "m", transport=httpx.MockTransport(handler), backoff_s=0.001, **kwargs
    )


def a_refuses_connections(hits: Counter[str]) -> Any:
    """A transport handler: a.test refuses every connection, b.test answers; counts hits."""

    def handler(request: httpx.Request) -> httpx.Response:
        hits[request.url.host] += 1
        if request.url.host == "a.test":
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json=COMPLETION)

    return handler


@pytest.mark.usefixtures("no_backoff")
def test_client_skips_an_endpoint_that_refuses_connections(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hits: Counter[str] = Counter()

    handler = a_refuses_connections(hits)
    # a cool-down far longer than the test, so wall-clock time cannot end it
    client = two_endpoint_client(handler, max_retries=1, endpoint_cooldown_s=600)

    async def go() -> list[Any]:
        try:
            return [await client.complete(make_request()) for _ in range(10)]
        finally:
            await client.aclose()

    with caplog.at_level(logging.WARNING, logger=BALANCER_LOGGER):
        responses = asyncio.run(go())
    assert [response.text for response in responses] == ["ok"] * 10
    assert responses[0].attempts == 2  # a.test, then b.test
    assert all(response.attempts == 1 for response in responses[1:])
    assert hits == {"a.test": 1, "b.test": 10}
    (message,) = warnings_of(caplog)
    assert A in message and "ConnectError" in message


@pytest.mark.usefixtures("no_backoff")
def test_client_under_concurrency_keeps_succeeding_while_one_endpoint_is_down() -> None:
    hits: Counter[str] = Counter()

    handler = a_refuses_connections(hits)
    client = two_endpoint_client(handler, max_retries=1, endpoint_cooldown_s=600)

    async def go() -> tuple[list[Any], int]:
        try:
            first = await asyncio.gather(*(client.complete(make_request()) for _ in range(8)))
            down_hits = hits["a.test"]
            second = await asyncio.gather(*(client.complete(make_request()) for _ in range(8)))
            return [*first, *second], down_hits
        finally:
            await client.aclose()

    responses, down_hits_after_first_batch = asyncio.run(go())
    assert [response.text for response in responses] == ["ok"] * 16
    # requests already on their way to a.test fail over; none goes there afterwards
    assert hits["a.test"] == down_hits_after_first_batch >= 1
    assert hits["b.test"] == 16


def test_client_spreads_concurrent_requests_by_outstanding_count() -> None:
    in_flight: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    hosts: list[str] = []
    gate = asyncio.Event()
    entered = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        host = request.url.host
        hosts.append(host)
        in_flight[host] += 1
        peak[host] = max(peak[host], in_flight[host])
        if len(hosts) == 6:
            entered.set()
        await gate.wait()
        in_flight[host] -= 1
        return httpx.Response(200, json=COMPLETION)

    client = two_endpoint_client(handler)

    async def go() -> None:
        try:
            tasks = [asyncio.create_task(client.complete(make_request())) for _ in range(6)]
            await asyncio.wait_for(entered.wait(), timeout=5)
            assert client._endpoints.outstanding(A) == client._endpoints.outstanding(B) == 3
            gate.set()
            await asyncio.gather(*tasks)
        finally:
            await client.aclose()

    asyncio.run(go())
    assert Counter(hosts) == {"a.test": 3, "b.test": 3}
    assert peak == {"a.test": 3, "b.test": 3}


def test_client_sends_new_requests_to_the_less_busy_endpoint() -> None:
    hosts: list[str] = []
    slow_gate = asyncio.Event()
    slow_entered = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        if request.url.host == "a.test":  # a.test holds its request until released
            slow_entered.set()
            await slow_gate.wait()
        return httpx.Response(200, json=COMPLETION)

    client = two_endpoint_client(handler)

    async def go() -> None:
        try:
            slow = asyncio.create_task(client.complete(make_request()))
            await asyncio.wait_for(slow_entered.wait(), timeout=5)
            for _ in range(4):
                await client.complete(make_request())
            slow_gate.set()
            await slow
            assert client._endpoints.outstanding(A) == client._endpoints.outstanding(B) == 0
        finally:
            await client.aclose()

    asyncio.run(go())
    # round-robin would have alternated; least outstanding keeps off the busy endpoint
    assert hosts == ["a.test", "b.test", "b.test", "b.test", "b.test"]
