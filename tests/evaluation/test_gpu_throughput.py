"""eval/gpu_throughput.py: the model folder, the budget, the simulate command, the figures and
the report, without a server; one integration test runs the tiny shape on a real vLLM server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from billp.config import LEConfig
from tests.evaluation.conftest import REPO, cli_env, load_eval_script
from tests.integration.conftest import require_vllm

gpu_throughput = load_eval_script("gpu_throughput")

FAKE_VOCAB = {"a": 0, "b": 1, "c": 2}
FAKE_ADDED_ID = 7
SMOKE_TIMEOUT_S = 600


def _tokenizer_dir(path: Path) -> Path:
    """A model folder with a minimal tokenizer and a config to borrow settings from."""
    path.mkdir()
    tokenizer = {
        "model": {"type": "BPE", "vocab": FAKE_VOCAB},
        "added_tokens": [{"id": FAKE_ADDED_ID, "content": "<|im_end|>", "special": True}],
    }
    (path / "tokenizer.json").write_text(json.dumps(tokenizer))
    (path / "tokenizer_config.json").write_text("{}")
    (path / "chat_template.jinja").write_text("{{ messages }}")
    base = {
        "_model_name_or_path": "base",
        "transformers_version": "5.19.0",
        "model_type": "llama",
        "bos_token_id": 1,
        "eos_token_id": 2,
        "rms_norm_eps": 1e-5,
        "hidden_size": 576,
        "tie_word_embeddings": True,
        "vocab_size": 3,
    }
    (path / "config.json").write_text(json.dumps(base))
    return path


def test_the_7b_shape_is_llama_2_7b_and_its_parameter_count_is_transformers() -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    shape = gpu_throughput.SHAPES["7b"]
    assert (shape.hidden_size, shape.num_hidden_layers, shape.num_attention_heads) == (
        4096,
        32,
        32,
    )
    assert shape.intermediate_size == 11008 and shape.head_dim == 128
    vocab = 49152
    config = LlamaConfig(**gpu_throughput.dummy_config({}, shape, vocab))
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    assert sum(p.numel() for p in model.parameters()) == shape.parameters(vocab)
    assert 6.5e9 < shape.parameters(vocab) < 7.2e9


def test_the_tiny_shape_has_a_head_size_vllm_cpu_accepts() -> None:
    assert gpu_throughput.SHAPES["tiny"].head_dim == 32


def test_the_model_folder_has_the_shape_and_the_tokenizers_vocabulary(tmp_path: Path) -> None:
    source = _tokenizer_dir(tmp_path / "source")
    shape = gpu_throughput.SHAPES["tiny"]
    written = gpu_throughput.write_model_folder(shape, source, tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert written["vocab_size"] == config["vocab_size"] == FAKE_ADDED_ID + 1
    assert config["hidden_size"] == shape.hidden_size
    assert config["num_hidden_layers"] == shape.num_hidden_layers
    assert config["head_dim"] == shape.head_dim
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["tie_word_embeddings"] is False
    assert (config["bos_token_id"], config["eos_token_id"]) == (1, 2)
    assert "_model_name_or_path" not in config and "transformers_version" not in config
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        assert (tmp_path / "model" / name).read_bytes() == (source / name).read_bytes()
    assert not list((tmp_path / "model").glob("*.safetensors")), "no weights: vLLM makes them"
    assert written["parameters"] == shape.parameters(FAKE_ADDED_ID + 1)


def test_a_tokenizer_folder_without_its_files_is_refused(tmp_path: Path) -> None:
    source = _tokenizer_dir(tmp_path / "source")
    (source / "tokenizer.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"tokenizer\.json"):
        gpu_throughput.write_model_folder(gpu_throughput.SHAPES["tiny"], source, tmp_path / "model")


def test_the_default_phases_fit_the_ten_minute_budget() -> None:
    args = gpu_throughput.build_parser().parse_args([])
    assert args.shape == "7b" and args.budget_s <= 600
    phases = args.server_timeout_s + args.simulate_timeout_s + args.le_timeout_s
    assert phases + gpu_throughput.STOP_RESERVE_S <= args.budget_s


def test_the_budget_cuts_a_phase_and_skips_one_with_too_little_left() -> None:
    reserve = gpu_throughput.STOP_RESERVE_S
    budget = gpu_throughput.Budget(total_s=100.0)
    assert budget.timeout(30.0) == 30.0
    budget.started = time.monotonic() - (100.0 - reserve - 15.0)
    assert budget.timeout(30.0) == pytest.approx(15.0, abs=1.0)
    budget.started = time.monotonic() - 100.0
    assert budget.timeout(30.0) is None


def test_the_le_device_is_passed_only_where_the_config_has_the_field() -> None:
    fields = gpu_throughput.le_fields("cuda")
    if "device" in LEConfig.model_fields:
        assert fields == {"device": "cuda"}
    else:
        assert fields == {}
    assert gpu_throughput.le_flags({"device": "cuda"}) == ["--env.le.device", "cuda"]


@pytest.mark.parametrize("supported", [True, False])
def test_the_simulate_command_points_every_role_at_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, supported: bool
) -> None:
    monkeypatch.setattr(
        gpu_throughput, "le_fields", lambda device: {"device": device} if supported else {}
    )
    args = gpu_throughput.build_parser().parse_args(["--concurrency", "12", "--le-device", "cuda"])
    command = gpu_throughput.simulate_command(args, "http://h:1/v1", "billp-dummy-7b", tmp_path)
    flags = dict(zip(command[3::2], command[4::2], strict=False))
    assert command[1:3] == ["-m", "billp.simulate"]
    assert flags["--llm.backend"] == "openai"
    assert flags["--llm.base-url"] == "http://h:1/v1"
    assert flags["--llm.model"] == "billp-dummy-7b"
    assert flags["--concurrency"] == flags["--wave-size"] == "12"
    assert flags["--output-dir"] == str(tmp_path / "runs")
    assert ("--env.le.device" in command) is supported
    assert "--llm.max-tokens" not in command


def test_figures_come_from_the_summary() -> None:
    role = {"calls": 10, "reasks": 1, "repairs": 0, "fallbacks": 2, "cached_tokens": 50}
    summary: dict[str, Any] = {
        "throughput": {"episodes_played": 4, "wall_s": 20.0, "users_per_hour": 720.0},
        "llm": {
            "actor": {**role, "prompt_tokens": 300, "completion_tokens": 40},
            "critic": {**role, "prompt_tokens": 100, "completion_tokens": 20},
        },
        "server": {"prompt_tokens": 400.0, "prefix_cache_hit_rate": 0.25},
    }
    figures = gpu_throughput.figures_from_summary(summary)
    assert figures["users_per_hour"] == 720.0 and figures["episodes"] == 4
    assert figures["calls"] == 20 and figures["fallbacks"] == 4 and figures["reasks"] == 2
    assert figures["prompt_tokens_per_s"] == pytest.approx(400 / 20)
    assert figures["completion_tokens_per_s"] == pytest.approx(60 / 20)
    assert figures["tokens_per_s"] == pytest.approx(460 / 20)
    assert figures["server"]["prefix_cache_hit_rate"] == 0.25


def test_a_stopped_run_gives_partial_figures(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "episodes.jsonl").write_text('{"a": 1}\n{"a": 2}\n{"a": 3}\n')
    server = {"prompt_tokens": 900.0, "generation_tokens": 100.0}
    figures = gpu_throughput.partial_figures(run_dir, 60.0, server)
    assert figures["episodes"] == 3
    assert figures["users_per_hour"] == pytest.approx(3 * 3600 / 60)
    assert figures["tokens_per_s"] == pytest.approx(1000 / 60)
    assert figures["source"].startswith("partial")
    empty = gpu_throughput.partial_figures(None, 60.0, None)
    assert empty["episodes"] == 0 and empty["tokens_per_s"] == 0.0


def test_a_child_past_its_time_out_is_interrupted(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)"]
    started = time.monotonic()
    code, wall, tail = gpu_throughput.run_with_timeout(command, 2.0, tmp_path / "child.log")
    assert code is None and wall < gpu_throughput.INTERRUPT_GRACE_S
    assert time.monotonic() - started < gpu_throughput.INTERRUPT_GRACE_S
    assert "started" in tail


@pytest.mark.parametrize(
    ("code", "tail", "status", "measured"),
    [
        (0, 'loading\n{"steps_per_s": 3.0}\n', "ok", True),
        (None, '{"steps_per_s": 3.0}\n', "ok", True),  # printed, then hit the time-out
        (None, "loading\n", "timed out", False),
        (1, "Traceback\n", "failed", False),
    ],
)
def test_the_le_phase_keeps_a_result_printed_before_its_time_out(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    code: int | None,
    tail: str,
    status: str,
    measured: bool,
) -> None:
    monkeypatch.setattr(gpu_throughput, "run_with_timeout", lambda *a: (code, 15.0, tail))
    args = gpu_throughput.build_parser().parse_args(["--le-device", "cpu"])
    outcome = gpu_throughput.run_le_phase(args, gpu_throughput.Budget(600.0), tmp_path)
    assert outcome["phase"].status == status
    assert ("le" in outcome) is measured


def test_the_report_names_the_command_and_says_the_weights_are_random() -> None:
    result = {
        "command": "python eval/gpu_throughput.py --shape tiny",
        "shape": "tiny",
        "shape_config": {
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
        },
        "device": "cpu",
        "vllm": "vllm-cpu 0.32.0",
        "model": {"vocab_size": 49152, "parameters": 6_373_696},
        "phases": [
            {
                "name": "vLLM start-up",
                "status": "timed out",
                "seconds": 9.0,
                "timeout_s": 9.0,
                "detail": "not healthy | log",
            }
        ],
        "note": gpu_throughput.RANDOM_WEIGHTS_NOTE,
    }
    text = gpu_throughput.markdown_report(result)
    assert "`python eval/gpu_throughput.py --shape tiny`" in text
    assert "| simulated users/hour | not measured |" in text
    assert "| LE env steps/s (random actions) | not measured |" in text
    assert "| vLLM start-up | timed out | 9.0 | 9 | not healthy \\| log |" in text
    assert "Random (dummy) weights" in text and "not recommendation quality" in text


SMOKE_ENV = "BILLP_GPU_SCRIPT_SMOKE"
"""Set to 1 to run the script end to end on vllm-cpu (about 4 minutes on 2 cores: too long for
the default suite, which already boots a real vLLM server in tests/integration)."""


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.skipif(os.environ.get(SMOKE_ENV) != "1", reason=f"set {SMOKE_ENV}=1 to run it")
def test_the_tiny_shape_runs_every_phase_on_a_real_vllm_server(tmp_path: Path) -> None:
    """The same code path as on a GPU: dummy weights on vllm-cpu, a short LE run, LE steps."""
    require_vllm()
    env = cli_env(tmp_path / "cache")
    env.pop("CUDA_VISIBLE_DEVICES", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    out = tmp_path / "result.json"
    command = [
        sys.executable, str(REPO / "eval" / "gpu_throughput.py"),
        "--shape", "tiny", "--le-device", "cpu",
        "--train-users", "0", "--test-users", "2", "--concurrency", "2", "--max-steps", "2",
        "--le-steps", "5", "--kv-cache-gib", "1", "--budget-s", "560",
        "--server-timeout-s", "300", "--simulate-timeout-s", "180", "--le-timeout-s", "120",
        "--out", str(tmp_path / "out"), "--json", str(out),
    ]  # fmt: skip
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=SMOKE_TIMEOUT_S, cwd=REPO
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert [p["status"] for p in result["phases"]] == ["ok"] * 4
    assert "--load-format" in result["server"]["argv"]
    assert result["simulate"]["source"] == "summary.json"
    assert result["simulate"]["episodes"] == 2 and result["simulate"]["tokens_per_s"] > 0
    assert result["le"]["steps"] == 5 and result["le"]["steps_per_s"] > 0
    assert "| simulated users/hour |" in done.stdout and "Random (dummy) weights" in done.stdout
