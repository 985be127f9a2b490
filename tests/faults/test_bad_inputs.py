"""Corrupt or truncated inputs of every kind billp reads: a clear error naming the file, exit 2,
no traceback, and nothing started (no run directory) when the input is checked up front."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from billp.common.exit_codes import EXIT_BAD_INPUT
from billp.data.movielens import movielens_100k_dir
from billp.le.checkpoint import default_checkpoint_dir
from tests.faults.conftest import FIGURES, ForkServer, Reference, fresh_copy, run_args

Case = Callable[[Path, Reference], tuple[list[str], str]]
"""Builds a broken input under a folder; returns the CLI arguments and the file to be named."""


def _resume(run_dir: Path) -> list[str]:
    return ["--resume", str(run_dir)]


def _memory_root(run_dir: Path) -> Path:
    return Path(json.loads((run_dir / "manifest.json").read_text())["memory_dir"])


def _rewrite_meta(folder: Path, **changes: object) -> None:
    meta = json.loads((folder / "meta.json").read_text())
    meta.update(changes)
    (folder / "meta.json").write_text(json.dumps(meta))


# ------------------------------------------------------------------ run files
def episodes_middle_line(tmp: Path, ref: Reference) -> tuple[list[str], str]:
    run_dir = fresh_copy(ref, tmp)
    lines = (run_dir / "episodes.jsonl").read_text().splitlines(keepends=True)
    lines[1] = lines[1][:40] + "\n"
    (run_dir / "episodes.jsonl").write_text("".join(lines))
    return _resume(run_dir), "episodes.jsonl line 2"


def episodes_wrong_record(tmp: Path, ref: Reference) -> tuple[list[str], str]:
    run_dir = fresh_copy(ref, tmp)
    lines = (run_dir / "episodes.jsonl").read_text().splitlines(keepends=True)
    record = json.loads(lines[0])
    del record["items"]
    lines[0] = json.dumps(record) + "\n"
    (run_dir / "episodes.jsonl").write_text("".join(lines))
    return _resume(run_dir), "episodes.jsonl: record 1"


def steps_middle_line(tmp: Path, ref: Reference) -> tuple[list[str], str]:
    run_dir = fresh_copy(ref, tmp)
    lines = (run_dir / "steps.jsonl").read_text().splitlines(keepends=True)
    lines[2] = "\x00\x00\x00garbage\n"
    (run_dir / "steps.jsonl").write_text("".join(lines))
    return _resume(run_dir), "steps.jsonl line 3"


def run_config_not_toml(tmp: Path, ref: Reference) -> tuple[list[str], str]:
    run_dir = fresh_copy(ref, tmp)
    text = (run_dir / "config.toml").read_text()
    (run_dir / "config.toml").write_text(text[: len(text) // 2] + "\n[[[")
    return _resume(run_dir), "config.toml"


def run_config_bad_value(tmp: Path, ref: Reference) -> tuple[list[str], str]:
    run_dir = fresh_copy(ref, tmp)
    text = (run_dir / "config.toml").read_text().replace("max_steps = 4", "max_steps = -1")
    (run_dir / "config.toml").write_text(text)
    return _resume(run_dir), "config.toml"


def manifest_damaged(tmp: Path, ref: Reference) -> tuple[list[str], str]:
    run_dir = fresh_copy(ref, tmp)
    (run_dir / "manifest.json").write_text('{"run_name": "x", "memo')
    return _resume(run_dir), "manifest.json"


# ------------------------------------------------------------------ memories
def memory_index_flipped(tmp: Path, ref: Reference) -> tuple[list[str], str]:
    run_dir = fresh_copy(ref, tmp)
    index = _memory_root(run_dir) / "actor" / "index.faiss"
    data = bytearray(index.read_bytes())
    data[100] ^= 0xFF
    index.write_bytes(bytes(data))
    return _resume(run_dir), "actor/index.faiss"


def memory_index_forged(tmp: Path, ref: Reference) -> tuple[list[str], str]:
    """A damaged index whose checksum an edited meta.json matches: FAISS never sees it."""
    run_dir = fresh_copy(ref, tmp)
    folder = _memory_root(run_dir) / "critic"
    data = bytearray((folder / "index.faiss").read_bytes())
    data[8:16] = (10**12).to_bytes(8, "little")  # ntotal
    (folder / "index.faiss").write_bytes(bytes(data))
    import hashlib

    meta = json.loads((folder / "meta.json").read_text())
    meta["checksums"]["index.faiss"] = hashlib.sha256(bytes(data)).hexdigest()
    (folder / "meta.json").write_text(json.dumps(meta))
    return [*run_args(tmp / "init"), "--memory.init", str(folder.parent)], "critic/index.faiss"


def memory_meta_garbage(tmp: Path, ref: Reference) -> tuple[list[str], str]:
    run_dir = fresh_copy(ref, tmp)
    meta = _memory_root(run_dir) / "reflections" / "meta.json"
    meta.write_text("{not json")
    return [*run_args(tmp / "init"), "--memory.init", str(meta.parent.parent)], (
        "reflections/meta.json"
    )


def memory_payloads_truncated(tmp: Path, ref: Reference) -> tuple[list[str], str]:
    run_dir = fresh_copy(ref, tmp)
    payloads = _memory_root(run_dir) / "actor" / "payloads.jsonl"
    payloads.write_bytes(payloads.read_bytes()[:50])
    return _resume(run_dir), "actor/payloads.jsonl"


def memory_init_without_memories(tmp: Path, ref: Reference) -> tuple[list[str], str]:
    run_dir = fresh_copy(ref, tmp)
    parent = _memory_root(run_dir).parent
    return [*run_args(tmp / "init"), "--memory.init", str(parent)], "holds no billp memories"


# ------------------------------------------------------------------ LE checkpoint
def _checkpoint_copy(tmp: Path) -> Path:
    folder = tmp / "checkpoint"
    shutil.copytree(default_checkpoint_dir(), folder)
    return folder


def le_manifest_damaged(tmp: Path, ref: Reference) -> tuple[list[str], str]:
    folder = _checkpoint_copy(tmp)
    (folder / "manifest.json").write_text('{"format": ')
    return [*run_args(tmp), "--env.name", "le", "--env.le.checkpoint", str(folder)], (
        "manifest.json"
    )


def le_weights_truncated(tmp: Path, ref: Reference) -> tuple[list[str], str]:
    folder = _checkpoint_copy(tmp)
    weights = folder / "le.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    return [*run_args(tmp), "--env.name", "le", "--env.le.checkpoint", str(folder)], (
        "le.safetensors"
    )


# ------------------------------------------------------------------ response cache
def cache_record_damaged(tmp: Path, ref: Reference) -> tuple[list[str], str]:
    # A recorded cache is made by the session's first call of this case (see the fixture).
    cache = tmp.parent / "recorded-cache"
    damaged = tmp / "cache"
    shutil.copytree(cache, damaged)
    victim = sorted(damaged.rglob("*.json"))[0]
    victim.write_text(victim.read_text()[:30])
    args = [*run_args(tmp), "--llm.cache", "replay", "--llm.cache-dir", str(damaged)]
    return args, victim.name


# ------------------------------------------------------------------ config and templates
def config_not_toml(tmp: Path, ref: Reference) -> tuple[list[str], str]:
    path = tmp / "broken.toml"
    path.write_text("seed = 0\n[env\nname = 'matrix'\n")
    return [*run_args(tmp), "--config", str(path)], "broken.toml"


def config_unknown_key(tmp: Path, ref: Reference) -> tuple[list[str], str]:
    path = tmp / "unknown.toml"
    path.write_text("[env]\nmax_step = 3\n")
    return [*run_args(tmp), "--config", str(path)], "unknown.toml"


def _template(source: str) -> Case:
    def case(tmp: Path, ref: Reference) -> tuple[list[str], str]:
        folder = tmp / "prompts"
        folder.mkdir()
        (folder / "planner.j2").write_text(source)
        return [*run_args(tmp), "--prompts-dir", str(folder)], "planner.j2"

    return case


# ------------------------------------------------------------------ dataset files
def _dataset(edit: Callable[[Path], None]) -> Case:
    def case(tmp: Path, ref: Reference) -> tuple[list[str], str]:
        folder = tmp / "ml-100k"
        folder.mkdir()
        for suffix in ("inter", "item"):
            shutil.copy(movielens_100k_dir() / f"ml-100k.{suffix}", folder)
        edit(folder)
        return [*run_args(tmp), "--data.path", str(folder)], "ml-100k."

    return case


def _bad_rating(folder: Path) -> None:
    path = folder / "ml-100k.inter"
    lines = path.read_text().splitlines(keepends=True)
    lines[500] = "196\t242\tthree\t881250949\n"
    path.write_text("".join(lines))


def _item_truncated(folder: Path) -> None:
    path = folder / "ml-100k.item"
    path.write_bytes(path.read_bytes()[:30])


def _inter_binary(folder: Path) -> None:
    path = folder / "ml-100k.inter"
    path.write_bytes(path.read_bytes()[:5000] + b"\xff\xfe\x00\x81" * 10)


CASES: dict[str, Case] = {
    "episodes.jsonl: damaged middle line": episodes_middle_line,
    "episodes.jsonl: record missing a field": episodes_wrong_record,
    "steps.jsonl: damaged middle line": steps_middle_line,
    "run config.toml: not TOML": run_config_not_toml,
    "run config.toml: invalid value": run_config_bad_value,
    "manifest.json: truncated": manifest_damaged,
    "memory index.faiss: flipped byte": memory_index_flipped,
    "memory index.faiss: forged with matching meta checksum": memory_index_forged,
    "memory meta.json: not JSON": memory_meta_garbage,
    "memory payloads.jsonl: truncated": memory_payloads_truncated,
    "memory.init: folder without memories": memory_init_without_memories,
    "LE checkpoint manifest.json: truncated": le_manifest_damaged,
    "LE checkpoint le.safetensors: truncated": le_weights_truncated,
    "response cache record: truncated": cache_record_damaged,
    "--config: not TOML": config_not_toml,
    "--config: unknown key": config_unknown_key,
    "template: syntax error": _template("{% if %}"),
    "template: range(10**8)": _template("{{ range(10**8) | list | length }}"),
    "template: endless recursion": _template(
        "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"
    ),
    "template: giant output": _template("{% for i in range(50000) %}{{ 'x' * 90000 }}{% endfor %}"),
    "template: undefined variable": _template("{{ no_such_variable }}"),
    "dataset .inter: non-numeric rating": _dataset(_bad_rating),
    "dataset .item: truncated": _dataset(_item_truncated),
    "dataset .inter: binary garbage": _dataset(_inter_binary),
}


@pytest.fixture(scope="session")
def recorded_cache(forkserver: ForkServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bad-inputs")
    out = root / "record"
    result = forkserver.run(
        [*run_args(out), "--llm.cache", "record", "--llm.cache-dir", str(root / "recorded-cache")]
    )
    assert result.rc == 0, result.stderr[-2000:]
    return root


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_a_clear_error(
    forkserver: ForkServer, reference: Reference, recorded_cache: Path, name: str
) -> None:
    tmp = recorded_cache / name.replace(" ", "_").replace("/", "_").replace(":", "")
    tmp.mkdir()
    args, named = CASES[name](tmp, reference)
    result = forkserver.run(args)
    message = next((ln for ln in result.stderr.splitlines() if ln.startswith("error:")), "")
    FIGURES.bad_inputs.append((name, f"exit {result.rc}: {message[:300]}"))
    assert result.rc == EXIT_BAD_INPUT, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert named in result.stderr, result.stderr[-3000:]
    if "--resume" not in args and "--llm.cache" not in args:  # a cache is read lazily
        output_dir = Path(args[args.index("--output-dir") + 1])
        assert not output_dir.exists(), "nothing may start before the inputs are checked"
