"""Fixtures that boot a real vLLM server on a tiny random model (tests marked ``integration``)."""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from billp.common.provision import ProvisionedModel
from billp.config import ServerConfig
from billp.llm.server import VLLMServer
from tests.integration.tiny_model import build_tiny_model

logger = logging.getLogger(__name__)

TINY_SERVED_NAME = "tiny-llama"
TINY_KV_CACHE_GIB = 1
TINY_MAX_MODEL_LEN = 2048
TINY_STARTUP_TIMEOUT_S = 300.0


def require_vllm() -> None:
    """Skip without vLLM locally; in CI (CI=true) a missing vLLM is a failure."""
    if importlib.util.find_spec("vllm") is None:
        message = "vLLM is not installed (bash scripts/install.sh test)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama folder (built once per session, no download)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def vllm_server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real vLLM server on the tiny model; yields its base_url (``http://host:port/v1``)."""
    require_vllm()
    model = ProvisionedModel(
        path=tiny_model_dir, hub_id=None, served_name=TINY_SERVED_NAME, source="folder"
    )
    config = ServerConfig(
        kv_cache_gib=TINY_KV_CACHE_GIB,
        max_model_len=TINY_MAX_MODEL_LEN,
        startup_timeout_s=TINY_STARTUP_TIMEOUT_S,
    )
    log_path = tmp_path_factory.mktemp("vllm-server") / "vllm.log"
    with VLLMServer(model, config, log_path) as server:
        logger.info("tiny vLLM server booted in %.1f s", server.startup_s or 0.0)
        print(f"\n[vllm_server] booted in {server.startup_s:.1f} s at {server.base_url}")
        yield server.base_url
