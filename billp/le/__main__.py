"""``python -m billp.le``.

OpenMP threads wait passively (unless the caller chose otherwise): on a small machine shared
with other busy processes, spinning threads slow every parallel region down many times over
(measured: a training step went from ~2.5 s to 10-50 s on 2 shared cores). It must be set
before torch is imported.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import sys

from billp.le.cli import main

sys.exit(main())
