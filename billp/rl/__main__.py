"""``python -m billp.rl``."""

from __future__ import annotations

import sys

from billp.rl.cli import main

if __name__ == "__main__":
    sys.exit(main())
