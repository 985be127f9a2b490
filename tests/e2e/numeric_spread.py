"""How far the golden runs move across numeric environments: ``python -m tests.e2e.numeric_spread``.

Plays each golden run (``tests/e2e/regen_golden.py``) once per numeric environment, each with
a fresh cache (so fitted models are fitted under that environment), and compares every run's
golden files with the first environment's: the discrete content (items, end reasons, step
counts, prompt hashes, memory texts) must be identical, and the largest absolute and relative
difference of the floating-point values is printed. The numbers justify the precision at which
``tests/e2e/golden_compare.py`` compares floats.

``--matrix`` also fits the classic simulator's rating matrix (the default data and model
settings) once per environment and prints how far its values move, raw (in the fit's dtype)
and as the simulator holds them (clipped, float32): the margin between the spread of what is
computed and the 6 decimals rewards are written with.

An environment is a set of variables that change which kernels numeric libraries pick on the
same processor: torch's SIMD level (``ATEN_CPU_CAPABILITY``), MKL's instruction set
(``MKL_ENABLE_INSTRUCTIONS``), OpenBLAS's kernel (``OPENBLAS_CORETYPE``, numpy's BLAS),
numpy's dispatched loops (``NPY_DISABLE_CPU_FEATURES``) and the thread counts.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from tests.e2e.conftest import REPO, cli_env
from tests.e2e.golden_compare import ANY_FLOAT, differences, float_spread
from tests.e2e.regen_golden import GOLDEN_RUNS, produce

ENVIRONMENTS: dict[str, dict[str, str]] = {
    "as installed": {},
    "aten default": {"ATEN_CPU_CAPABILITY": "default"},
    "aten avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "mkl sse4.2": {"MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
    "openblas sandybridge": {"OPENBLAS_CORETYPE": "Sandybridge"},
    "numpy without avx2/fma": {"NPY_DISABLE_CPU_FEATURES": "AVX2 FMA3 F16C AVX"},
    "1 thread": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
    "2 threads": {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"},
}
"""Numeric environments, by name; the first is the reference."""


def dump_rating_matrix(path: Path) -> None:
    """Fit the default rating matrix (no cache) and save it to ``path`` (.npy)."""
    from billp.config import DataConfig, EnvConfig
    from billp.data.dataset import load_dataset
    from billp.envs.rating_model import fit_rating_model

    dataset = load_dataset(DataConfig())
    factors = fit_rating_model(dataset, EnvConfig().rating_model)
    raw = factors.user_factors.astype(np.float64) @ factors.item_factors.T.astype(np.float64)
    raw += factors.user_bias[:, None] + factors.item_bias[None, :] + factors.global_mean[0]
    np.savez(path, raw=raw, simulator=factors.matrix())


def matrix_spread(environments: list[str], folder: Path) -> list[dict[str, object]]:
    """The rating matrix fitted under each environment, against the first environment's."""
    matrices = []
    for number, name in enumerate(environments):
        path = folder / f"matrix-{number}.npz"
        subprocess.run(
            [sys.executable, "-m", "tests.e2e.numeric_spread", "--dump-matrix", str(path)],
            env=cli_env(folder / f"matrix-cache-{number}", ENVIRONMENTS[name]),
            cwd=REPO,
            check=True,
        )
        with np.load(path) as arrays:
            matrices.append({kind: arrays[kind].astype(np.float64) for kind in arrays.files})
    rows = []
    for name, matrix in zip(environments[1:], matrices[1:], strict=True):
        for kind, values in matrix.items():
            reference = matrices[0][kind]
            gap = np.abs(values - reference)
            rows.append(
                {
                    "environment": name,
                    "values": kind,
                    "cells_differing": int((gap > 0).sum()),
                    "cells": int(gap.size),
                    "max_abs": float(gap.max()),
                    "rounded_6_differing": int(
                        (np.round(values, 6) != np.round(reference, 6)).sum()
                    ),
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.e2e.numeric_spread", description=__doc__)
    parser.add_argument("--runs", nargs="*", default=list(GOLDEN_RUNS), help="Golden runs.")
    parser.add_argument(
        "--environments", nargs="*", default=list(ENVIRONMENTS), help="Environment names."
    )
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    parser.add_argument("--matrix", action="store_true", help="Also the raw rating matrix.")
    parser.add_argument("--dump-matrix", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.dump_matrix:
        dump_rating_matrix(args.dump_matrix)
        return 0
    rows = []
    discrete_failures = 0
    with tempfile.TemporaryDirectory(prefix="billp-spread-") as tmp:
        for run in args.runs:
            outputs = {}
            for number, name in enumerate(args.environments):
                out = Path(tmp) / f"{run}-{number}"
                outputs[name] = produce(run, out, out / "cache", ENVIRONMENTS[name])
            reference_name = args.environments[0]
            reference = outputs[reference_name]
            for name in args.environments[1:]:
                for file, data in outputs[name].items():
                    found = differences(data, reference[file], ANY_FLOAT)
                    spread = float_spread(data, reference[file])
                    discrete_failures += bool(found)
                    rows.append(
                        {
                            "run": run,
                            "file": file,
                            "environment": name,
                            "bytes_equal": data == reference[file],
                            "discrete_differences": found[:5],
                            "max_abs": spread.max_abs,
                            "max_rel": spread.max_rel,
                            "floats": spread.count,
                            "floats_differing": spread.differing,
                        }
                    )
        matrix_rows = matrix_spread(args.environments, Path(tmp)) if args.matrix else []
    print(f"reference: {args.environments[0]}")
    print("| file | environment | bytes equal | discrete | floats differing | max abs | max rel |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        discrete = "same" if not r["discrete_differences"] else r["discrete_differences"][0]
        print(
            f"| {r['file']} | {r['environment']} | {r['bytes_equal']} | {discrete} | "
            f"{r['floats_differing']}/{r['floats']} | {r['max_abs']:.3g} | {r['max_rel']:.3g} |"
        )
    if matrix_rows:
        print("\nrating matrix (default data and settings; raw: before clipping and rounding):")
        print("| environment | values | cells differing | max abs | differing at 6 decimals |")
        print("|---|---|---|---|---|")
        for m in matrix_rows:
            print(
                f"| {m['environment']} | {m['values']} | {m['cells_differing']}/{m['cells']} | "
                f"{m['max_abs']:.3g} | {m['rounded_6_differing']} |"
            )
    if args.json:
        figures = {"golden_files": rows, "rating_matrix": matrix_rows}
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 1 if discrete_failures else 0


if __name__ == "__main__":
    sys.exit(main())
