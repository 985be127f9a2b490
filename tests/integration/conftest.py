"""The tiny random model the real-vLLM tests (marked ``integration``) serve, and their guard."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from tests.integration.tiny_model import build_tiny_model


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
