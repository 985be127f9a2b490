"""``python -m billp.le``.

OpenMP threads wait passively (unless the caller chose otherwise): on a small machine shared
with other busy processes, spinning threads slow every parallel region down many times over
(measured: a training step went from ~2.5 s to 10-50 s on 2 shared cores). It must be set
before torch is imported.
"""

from __future__ import annotations

import sys

from billp.common.torch_threads import prefer_passive_openmp

prefer_passive_openmp()

from billp.le.cli import main  # noqa: E402 (after the OpenMP policy)

sys.exit(main())
