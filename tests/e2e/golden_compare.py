"""Compare a run's golden files with the committed ones: discrete content exactly, floats at a
stated precision.

Every golden file is JSON or JSON lines. Two files match when they have the same documents
with the same keys in the same order, the same strings, integers, booleans and nulls (items,
end reasons, step counts, prompt hashes, replies and memory texts are all of these), and floats
that agree within :data:`GOLDEN_FLOAT_TOLERANCE`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FloatTolerance:
    """Two floats agree when ``|a - b| <= max(rel * max(|a|, |b|), abs)``."""

    rel: float
    abs: float

    def agree(self, a: float, b: float) -> bool:
        if a == b or math.isinf(self.rel) or math.isinf(self.abs):
            return True
        return abs(a - b) <= max(self.rel * max(abs(a), abs(b)), self.abs)


GOLDEN_FLOAT_TOLERANCE = FloatTolerance(rel=1e-6, abs=1e-5)
"""The precision of the golden comparison: 10 units of the 6th decimal (floats are written
with 6 decimals), or 1e-6 of the value for the sums above 10.

Measured with ``python -m tests.e2e.numeric_spread --matrix`` on one AVX2 processor over 7
numeric environments (torch without SIMD, MKL limited to SSE4.2, another OpenBLAS kernel,
numpy without AVX2/FMA, 1 and 2 threads), fresh caches each:

- the matrix world's rating model fitted in float32 (before): predicted ratings moved by up to
  1.3e-4 between torch's SIMD levels and 4.8e-7 between BLAS kernels or thread counts, and the
  tiny golden run's rewards by 1e-6 (the last written decimal);
- fitted in float64 (now): the raw predictions move by at most 1.7e-13, and not one cell of the
  simulator's float32 matrix differs; the golden files are byte-identical in every environment.

So the floats that reach the golden files no longer move; the tolerance only absorbs a last
float32 rounding step (FAISS similarities, a float32 reward rounding the other way), which can
flip the last written decimal of a value and the sums it enters. It is 60 times finer than the
change the float32 to float64 switch itself made to the rewards (up to 6.7e-4), so a real
change in what the simulator computes still fails the comparison."""

EXACT = FloatTolerance(rel=0.0, abs=0.0)
"""Byte-level agreement of the parsed floats."""

ANY_FLOAT = FloatTolerance(rel=math.inf, abs=math.inf)
"""Compares only the discrete content."""


def documents(data: bytes) -> list[Any]:
    """The JSON documents of a golden file: one per line, or one for the whole file."""
    text = data.decode("utf-8")
    try:
        return [json.loads(text)]
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def differences(
    produced: bytes, golden: bytes, tolerance: FloatTolerance = GOLDEN_FLOAT_TOLERANCE
) -> list[str]:
    """Where ``produced`` and ``golden`` disagree (empty when they match), as readable lines."""
    found: list[str] = []
    a, b = documents(produced), documents(golden)
    if len(a) != len(b):
        found.append(f"{len(a)} documents, golden has {len(b)}")
    for number, (x, y) in enumerate(zip(a, b, strict=False)):
        _walk(x, y, f"[{number}]", tolerance, found)
    return found


def _walk(a: Any, b: Any, path: str, tolerance: FloatTolerance, found: list[str]) -> None:
    if isinstance(a, float) and isinstance(b, float):
        if not tolerance.agree(a, b):
            found.append(f"{path}: {a!r} vs golden {b!r}")
    elif type(a) is not type(b):
        found.append(f"{path}: {a!r} vs golden {b!r}")
    elif isinstance(a, dict):
        if list(a) != list(b):
            found.append(f"{path}: keys {list(a)} vs golden {list(b)}")
        else:
            for key in a:
                _walk(a[key], b[key], f"{path}.{key}", tolerance, found)
    elif isinstance(a, list):
        if len(a) != len(b):
            found.append(f"{path}: {len(a)} entries vs golden {len(b)}")
        else:
            for index, (x, y) in enumerate(zip(a, b, strict=True)):
                _walk(x, y, f"{path}[{index}]", tolerance, found)
    elif a != b:
        found.append(f"{path}: {a!r} vs golden {b!r}")


@dataclass(frozen=True)
class FloatSpread:
    """How far the floats of two files with the same discrete content lie apart."""

    count: int
    differing: int
    max_abs: float
    max_rel: float


def float_spread(produced: bytes, golden: bytes) -> FloatSpread:
    """The floats' largest absolute and relative difference (paired by position)."""
    pairs: list[tuple[float, float]] = []
    for x, y in zip(documents(produced), documents(golden), strict=False):
        _floats(x, y, pairs)
    gaps = [abs(a - b) for a, b in pairs]
    rel = [gap / max(abs(a), abs(b)) for gap, (a, b) in zip(gaps, pairs, strict=True) if gap]
    return FloatSpread(
        count=len(pairs),
        differing=sum(gap > 0 for gap in gaps),
        max_abs=max(gaps, default=0.0),
        max_rel=max(rel, default=0.0),
    )


def _floats(a: Any, b: Any, out: list[tuple[float, float]]) -> None:
    if isinstance(a, float) and isinstance(b, float):
        out.append((a, b))
    elif isinstance(a, dict) and isinstance(b, dict):
        for key in a.keys() & b.keys():
            _floats(a[key], b[key], out)
    elif isinstance(a, list) and isinstance(b, list):
        for x, y in zip(a, b, strict=False):
            _floats(x, y, out)
