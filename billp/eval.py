"""``python -m billp.eval``: see :mod:`billp.evaluation.cli`."""

from __future__ import annotations

import sys

from billp.evaluation.cli import main

if __name__ == "__main__":
    sys.exit(main())
