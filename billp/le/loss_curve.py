"""The LE's loss curve: the logged loss points of its training stages, written as CSV beside the
checkpoint (``loss_curve.csv``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class LossCurve:
    """Logged loss points, written as CSV beside the checkpoint."""

    rows: list[dict[str, float | int | str]] = field(default_factory=list)

    def add(self, stage: str, step: int, elapsed_s: float, **losses: float) -> None:
        self.rows.append({"stage": stage, "step": step, "elapsed_s": round(elapsed_s, 2), **losses})

    def csv(self) -> str:
        columns = [
            "stage",
            "step",
            "elapsed_s",
            "loss",
            "l_text",
            "l_sm",
            "l_rm",
            "l_rating",
            "l_mse",
        ]
        lines = [",".join(columns)]
        for row in self.rows:
            values = []
            for column in columns:
                value = row.get(column, "")
                values.append(
                    f"{value:.5f}"
                    if isinstance(value, float) and column != "elapsed_s"
                    else str(value)
                )
            lines.append(",".join(values))
        return "\n".join(lines) + "\n"

    def last(self, stage: str) -> dict[str, float]:
        rows = [r for r in self.rows if r["stage"] == stage]
        if not rows:
            return {}
        return {
            k: float(v) for k, v in rows[-1].items() if k.startswith("l") and isinstance(v, float)
        }

    def mean(self, stage: str, key: str, first: bool, count: int) -> float:
        values = [float(r[key]) for r in self.rows if r["stage"] == stage and key in r]
        chosen = values[:count] if first else values[-count:]
        return float(np.mean(chosen)) if chosen else math.nan
