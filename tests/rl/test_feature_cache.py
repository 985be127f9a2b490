"""The LE feature cache: whole files under concurrent writers, keys that follow the inputs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from billp.rl.feature_cache import cache_key, read_cache, write_cache

WRITERS = 4
WRITES_PER_WRITER = 10


def test_concurrent_writers_of_one_entry_leave_a_whole_file_and_no_temporaries(
    tmp_path: Path,
) -> None:
    arrays = {"state": np.arange(20_000, dtype=np.float32).reshape(100, 200)}
    key = cache_key(arrays["state"])

    def fill(_: int) -> None:
        for _ in range(WRITES_PER_WRITER):
            write_cache(tmp_path, key, arrays, {"rows": 100})

    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(fill, range(WRITERS)))
    found = read_cache(tmp_path, key, ["state"])
    assert found is not None
    np.testing.assert_array_equal(found["state"], arrays["state"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{key}.json", f"{key}.safetensors"]


def test_the_key_changes_with_the_inputs() -> None:
    a = np.zeros(3, dtype=np.float32)
    assert cache_key(a, "x") == cache_key(a.copy(), "x")
    assert cache_key(a, "x") != cache_key(a + 1, "x")
    assert cache_key(a, "x") != cache_key(a, "y")
