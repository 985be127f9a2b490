"""The numeric environment that keys caches of computed arrays."""

from __future__ import annotations

import subprocess
import sys

import torch

from billp.common.numerics import numeric_environment, numeric_fingerprint


def test_environment_names_versions_and_simd_level() -> None:
    found = numeric_environment()
    assert found["torch"] == torch.__version__
    assert found["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert found["numpy_cpu_features"]
    assert list(found) == sorted(found)
    assert numeric_fingerprint().count(";") == len(found) - 1


def _fingerprint_under(**variables: str) -> str:
    code = "from billp.common.numerics import numeric_fingerprint; print(numeric_fingerprint())"
    env = {"PATH": "/usr/bin:/bin", **variables}
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_another_simd_level_is_another_fingerprint() -> None:
    plain = _fingerprint_under()
    assert _fingerprint_under(ATEN_CPU_CAPABILITY="default") != plain
    assert "env_OPENBLAS_CORETYPE=Sandybridge" in _fingerprint_under(
        OPENBLAS_CORETYPE="Sandybridge"
    )
