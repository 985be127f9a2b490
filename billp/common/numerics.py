"""The numeric environment: what decides which floating-point kernels this process runs.

The same arithmetic rounds differently under another SIMD level, BLAS kernel or library
version (summation order, fused multiply-add). A cache of fitted or computed arrays records
:func:`numeric_environment` and is keyed on it, so that a cache made under one environment is
never read under another, where a fresh computation could give other bits.
"""

from __future__ import annotations

import functools
import os

KERNEL_VARIABLES = (
    "ATEN_CPU_CAPABILITY",
    "MKL_ENABLE_INSTRUCTIONS",
    "MKL_CBWR",
    "OPENBLAS_CORETYPE",
    "NPY_DISABLE_CPU_FEATURES",
    "FAISS_OPT_LEVEL",
)
"""Environment variables that change which kernels the numeric libraries pick."""


@functools.cache
def numeric_environment() -> dict[str, str]:
    """Library versions, torch's SIMD level, numpy's enabled CPU features and the kernel
    variables that are set (sorted keys; stable within a process)."""
    import numpy as np
    import torch
    from numpy._core._multiarray_umath import __cpu_features__ as numpy_features

    found = {
        "numpy": np.__version__,
        "numpy_cpu_features": ",".join(sorted(k for k, on in numpy_features.items() if on)),
        "torch": torch.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    found |= {f"env_{name}": os.environ[name] for name in KERNEL_VARIABLES if name in os.environ}
    return dict(sorted(found.items()))


def numeric_fingerprint() -> str:
    """:func:`numeric_environment` as one line, for cache keys."""
    return ";".join(f"{k}={v}" for k, v in numeric_environment().items())
