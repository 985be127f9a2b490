"""The declared blocks of the split's test users, so every result says which users decided it.

- **final**: the first :data:`FINAL_USERS` test users (32 per seed for 3 seeds), played once
  for the reported figures; nothing is decided by looking at them;
- **dev**: :data:`DEV_USERS` test users from offset :data:`DEV_OFFSET`, on which design
  decisions are made (``--test-user-offset 100``).
"""

from __future__ import annotations

FINAL_USERS = 96
DEV_OFFSET = 100
DEV_USERS = 64


def describe(offset: int, count: int) -> str:
    """The test users ``offset`` .. ``offset + count - 1`` and the block they belong to."""
    if count <= 0:
        return "no test users"
    last = offset + count - 1
    span = f"test users {offset}-{last}"
    if last < FINAL_USERS:
        return f"{span} (final block)"
    if offset >= DEV_OFFSET and last < DEV_OFFSET + DEV_USERS:
        return f"{span} (dev block)"
    return f"{span} (outside the declared final and dev blocks)"
