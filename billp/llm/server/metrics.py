"""The vLLM server's Prometheus counters: scraping ``/metrics`` and summing billp's samples."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

# The logger of the module this one was split from: log lines (their format shows the
# logger) and filters on "billp.llm.server" stay as they were.
logger = logging.getLogger("billp.llm.server")


METRICS_PATH = "/metrics"
METRICS_TIMEOUT_S = 5.0
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


METRIC_NAMES = (
    "vllm:prefix_cache_queries_total",
    "vllm:prefix_cache_hits_total",
    "vllm:prompt_tokens_total",
    "vllm:generation_tokens_total",
)
"""Prometheus counters billp reads (token counts, summed over label sets)."""


def server_root(base_url: str) -> str:
    """``http://h:p/v1`` -> ``http://h:p`` (where /health and /metrics live)."""
    parts = urlsplit(base_url.rstrip("/"))
    path = parts.path[: -len("/v1")] if parts.path.endswith("/v1") else parts.path
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in LOOPBACK_HOSTS


def parse_prometheus(text: str, names: Iterable[str] = METRIC_NAMES) -> dict[str, float]:
    """Sum each named sample over its label sets in Prometheus text; missing names give 0.

    Names are sample names as exposed (``vllm:prompt_tokens_total``,
    ``..._seconds_count``), not the family names prometheus_client gives counters. Text that
    does not parse as a whole is read line by line, skipping (and logging) unreadable lines.
    """
    totals = dict.fromkeys(names, 0.0)
    try:
        samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    except ValueError:
        samples = []
        for line in text.splitlines():
            try:
                samples += [s for f in text_string_to_metric_families(line) for s in f.samples]
            except ValueError:
                logger.warning("unreadable metric line: %s", line)
    for sample in samples:
        if sample.name in totals:
            totals[sample.name] += sample.value
    return totals


def metrics_snapshot(base_url: str, timeout_s: float = METRICS_TIMEOUT_S) -> dict[str, float]:
    """Read the server's ``/metrics`` and return billp's counters (see :data:`METRIC_NAMES`).

    Raises:
        httpx.HTTPError: the endpoint did not answer with 200.
    """
    url = server_root(base_url) + METRICS_PATH
    with httpx.Client(timeout=timeout_s, trust_env=not _is_loopback(url)) as client:
        response = client.get(url)
        response.raise_for_status()
    return parse_prometheus(response.text)
