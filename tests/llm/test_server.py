"""VLLMServer with fake server commands: health wait, errors, ports, shutdown, cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from billp.common.provision import ProvisionedModel
from billp.config import ServerConfig
from billp.llm import server as server_module
from billp.llm.server import (
    METRIC_NAMES,
    ServerStartError,
    VLLMServer,
    format_cpu_list,
    metrics_snapshot,
    on_cpu,
    parse_prometheus,
    server_env,
    server_root,
    vllm_command,
)
from billp.llm.server import command as server_command
from tests.signals import default_signals

WAIT_S = 10.0
POLL_S = 0.05

FAKE_SERVER = textwrap.dedent(
    '''
    """A stand-in for vLLM's API server: argv = host port mode delay pidfile."""
    import http.server, json, os, signal, subprocess, sys, time

    host, port, mode, delay, pidfile = sys.argv[1:6]
    port, delay = int(port), float(delay)
    for i in range(60):
        print(f"fake log line {i}", flush=True)
    if mode == "exit":
        print("boom: unsupported argument --frobnicate", flush=True)
        sys.exit(3)
    pids = {"server": os.getpid()}
    if mode in ("grandchild", "stubborn"):
        child = subprocess.Popen([sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"])
        pids["grandchild"] = child.pid
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with open(pidfile + ".tmp", "w") as f:
        json.dump(pids, f)
    os.replace(pidfile + ".tmp", pidfile)
    time.sleep(delay)
    healthy = mode != "never"
    METRICS = (
        '# HELP vllm:prompt_tokens_total Prompt tokens.\\n'
        'vllm:prompt_tokens_total{engine="0",model_name="fake"} 120.0\\n'
        'vllm:prompt_tokens_total{engine="1",model_name="fake"} 30.0\\n'
        'vllm:prompt_tokens_created{engine="0",model_name="fake"} 1.7e9\\n'
        'vllm:prefix_cache_queries_total{engine="0",model_name="fake"} 100.0\\n'
        'vllm:prefix_cache_hits_total{engine="0",model_name="fake"} 64.0\\n'
    )

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/health":
                code, body = (200, b"") if healthy else (503, b"loading")
            elif self.path == "/metrics":
                code, body = 200, METRICS.encode()
            else:
                code, body = 404, b"not found"
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    http.server.HTTPServer((host, port), Handler).serve_forever()
    '''
)


def process_alive(pid: int) -> bool:
    """Whether ``pid`` is a live (non-zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] not in ("Z", "X")


def kill_group(pgid: int) -> None:
    """Clean-up after a failed assertion: SIGKILL whatever is left of a fake server's group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def wait_for(condition: Callable[[], bool], timeout_s: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(POLL_S)
    return condition()


@pytest.fixture
def fake_script(tmp_path: Path) -> Path:
    script = tmp_path / "fake_vllm.py"
    script.write_text(FAKE_SERVER)
    return script


@pytest.fixture
def model(tmp_path: Path) -> ProvisionedModel:
    return ProvisionedModel(path=tmp_path, hub_id=None, served_name="fake", source="folder")


Factory = Callable[..., VLLMServer]


@pytest.fixture
def make_server(fake_script: Path, model: ProvisionedModel, tmp_path: Path) -> Iterator[Factory]:
    """Build VLLMServers running the fake; every one is stopped after the test."""
    made: list[VLLMServer] = []

    def make(
        mode: str = "ok", delay: float = 0.0, stop_grace_s: float = 0.5, **config: object
    ) -> VLLMServer:
        pidfile = tmp_path / f"pids-{len(made)}.json"

        def command(host: str, port: int) -> list[str]:
            return [
                sys.executable,
                str(fake_script),
                host,
                str(port),
                mode,
                str(delay),
                str(pidfile),
            ]

        server = VLLMServer(
            model,
            ServerConfig.model_validate(config),
            tmp_path / "run" / "vllm.log",
            command=command,
            env=dict(os.environ),
            stop_grace_s=stop_grace_s,
        )
        server.pidfile = pidfile  # type: ignore[attr-defined]
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


def read_pids(server: VLLMServer) -> dict[str, int]:
    pidfile: Path = server.pidfile  # type: ignore[attr-defined]
    assert wait_for(pidfile.exists), f"the fake server never wrote {pidfile}"
    return json.loads(pidfile.read_text())


# ------------------------------------------------------------------ start and health


def test_start_waits_for_health_then_serves(make_server: Factory, tmp_path: Path) -> None:
    server = make_server(delay=0.6)
    assert server.start() is server
    assert server.running
    assert server.startup_s is not None and server.startup_s >= 0.6
    assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
    assert httpx.get(f"{server.root_url}/health", trust_env=False).status_code == 200
    log = (tmp_path / "run" / "vllm.log").read_text()
    assert "# billp: " in log and "fake log line 59" in log
    server.stop()
    assert not server.running and server.pid is None


def test_metrics_snapshot_sums_label_sets_and_defaults_to_zero(make_server: Factory) -> None:
    with make_server() as server:
        counters = metrics_snapshot(server.base_url)
    assert set(counters) == set(METRIC_NAMES)
    assert counters["vllm:prompt_tokens_total"] == 150.0
    assert counters["vllm:prefix_cache_queries_total"] == 100.0
    assert counters["vllm:prefix_cache_hits_total"] == 64.0
    assert counters["vllm:generation_tokens_total"] == 0.0


def test_never_healthy_times_out_with_log_tail(make_server: Factory) -> None:
    server_never = make_server(mode="never", startup_timeout_s=1.5)
    started = time.monotonic()
    with pytest.raises(ServerStartError) as caught:
        server_never.start()
    assert 1.5 <= time.monotonic() - started < WAIT_S
    message = str(caught.value)
    assert "startup_timeout_s" in message and "/health" in message
    assert "fake log line 59" in message
    assert "fake log line 19\n" not in message  # only the last 40 lines
    assert not server_never.running
    assert not process_alive(read_pids(server_never)["server"])


def test_early_exit_fails_fast_with_exit_code_and_log(make_server: Factory) -> None:
    server = make_server(mode="exit", startup_timeout_s=60)
    started = time.monotonic()
    with pytest.raises(ServerStartError, match="exited with code 3") as caught:
        server.start()
    assert time.monotonic() - started < WAIT_S
    assert "boom: unsupported argument --frobnicate" in str(caught.value)
    assert not server.running


def test_taken_port_makes_the_server_choose_another(make_server: Factory) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy_port = taken.getsockname()[1]
        with make_server(port=busy_port) as server:
            assert server.port != busy_port
            assert httpx.get(f"{server.root_url}/health", trust_env=False).status_code == 200


def test_free_preferred_port_is_used(make_server: Factory) -> None:
    port = server_module.free_port("127.0.0.1")
    with make_server(port=port) as server:
        assert server.port == port


# ------------------------------------------------------------------ shutdown


def test_stop_kills_the_whole_process_group(make_server: Factory) -> None:
    server = make_server(mode="grandchild").start()
    pids = read_pids(server)
    assert process_alive(pids["server"]) and process_alive(pids["grandchild"])
    server.stop()
    assert not process_alive(pids["server"])
    assert not process_alive(pids["grandchild"])  # it ignored SIGTERM: SIGKILL got it


def test_stop_escalates_to_sigkill_for_a_stubborn_server(make_server: Factory) -> None:
    server = make_server(mode="stubborn", stop_grace_s=0.5).start()
    pids = read_pids(server)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started >= 0.5
    assert not process_alive(pids["server"]) and not process_alive(pids["grandchild"])


def test_stop_is_idempotent_and_safe_before_start(make_server: Factory) -> None:
    server = make_server()
    server.stop()
    server.start()
    server.stop()
    server.stop()
    assert not server.running
    with pytest.raises(RuntimeError, match="not been started"):
        _ = make_server().port


def test_starting_twice_is_an_error(make_server: Factory) -> None:
    with make_server() as server, pytest.raises(RuntimeError, match="already running"):
        server.start()


def test_async_context_manager_starts_and_stops(make_server: Factory) -> None:
    server = make_server(mode="grandchild", delay=0.3)

    async def use() -> dict[str, int]:
        async with server as running:
            async with httpx.AsyncClient(trust_env=False) as client:
                assert (await client.get(f"{running.root_url}/health")).status_code == 200
            return read_pids(running)

    pids = asyncio.run(use())
    assert not process_alive(pids["server"]) and not process_alive(pids["grandchild"])


def test_cancelled_async_start_leaves_no_orphan(make_server: Factory) -> None:
    server = make_server(mode="grandchild", delay=60.0, startup_timeout_s=60)

    async def cancel_while_starting() -> dict[str, int]:
        task = asyncio.create_task(server.astart())
        pidfile: Path = server.pidfile  # type: ignore[attr-defined]
        for _ in range(int(WAIT_S / POLL_S)):
            if pidfile.exists():
                break
            await asyncio.sleep(POLL_S)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return read_pids(server)

    pids = asyncio.run(cancel_while_starting())
    assert not server.running
    assert not process_alive(pids["server"]) and not process_alive(pids["grandchild"])


PARENT = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from billp.config import ServerConfig
    from billp.common.provision import ProvisionedModel
    from billp.llm.server import VLLMServer

    script, tmp, use_with = sys.argv[1], Path(sys.argv[2]), sys.argv[3] == "with"
    pidfile = tmp / "pids.json"
    model = ProvisionedModel(path=tmp, hub_id=None, served_name="fake", source="folder")
    server = VLLMServer(
        model, ServerConfig(), tmp / "vllm.log", stop_grace_s=1.0,
        command=lambda h, p: [sys.executable, script, h, str(p), "grandchild", "0", str(pidfile)],
    )
    if use_with:
        with server:
            (tmp / "ready").write_text("1")
            time.sleep(120)
    else:
        server.start()
        (tmp / "ready").write_text("1")
        time.sleep(120)
    """
)


@pytest.mark.parametrize(
    ("signum", "use_with"),
    [(signal.SIGINT, "with"), (signal.SIGTERM, "bare"), (signal.SIGHUP, "bare")],
    ids=["ctrl-c", "sigterm", "sighup"],
)
def test_signalled_parent_leaves_no_orphan(
    fake_script: Path, tmp_path: Path, signum: int, use_with: str
) -> None:
    parent_script = tmp_path / "parent.py"
    parent_script.write_text(PARENT)
    parent = subprocess.Popen(
        [sys.executable, str(parent_script), str(fake_script), str(tmp_path), use_with],
        stderr=subprocess.PIPE,
        preexec_fn=default_signals,
    )
    try:
        assert wait_for((tmp_path / "ready").exists, 20.0), "the parent never got its server up"
        pids = json.loads((tmp_path / "pids.json").read_text())
        assert process_alive(pids["server"]) and process_alive(pids["grandchild"])
        parent.send_signal(signum)
        parent.wait(timeout=WAIT_S)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    try:
        assert wait_for(lambda: not process_alive(pids["server"]), 5.0)
        assert wait_for(lambda: not process_alive(pids["grandchild"]), 5.0)
    finally:
        kill_group(pids["server"])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_killed_parent_still_takes_the_server_down(fake_script: Path, tmp_path: Path) -> None:
    parent_script = tmp_path / "parent.py"
    parent_script.write_text(PARENT.replace('"grandchild"', '"ok"'))
    parent = subprocess.Popen(
        [sys.executable, str(parent_script), str(fake_script), str(tmp_path), "bare"]
    )
    try:
        assert wait_for((tmp_path / "ready").exists, 20.0)
        pids = json.loads((tmp_path / "pids.json").read_text())
        parent.kill()
        parent.wait(timeout=WAIT_S)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    try:
        assert wait_for(lambda: not process_alive(pids["server"]), 5.0)
    finally:
        kill_group(pids["server"])


# ------------------------------------------------------------------ command line and environment


def make_model(path: Path | None = None, hub_id: str | None = None) -> ProvisionedModel:
    source = "folder" if path is not None else "hub"
    return ProvisionedModel(path=path, hub_id=hub_id, served_name="smol", source=source)


def test_vllm_command_uses_the_api_server_module(tmp_path: Path) -> None:
    config = ServerConfig(max_model_len=2048, dtype="bfloat16", extra_args=["--seed", "7"])
    argv = vllm_command(make_model(tmp_path), config, "127.0.0.1", 8123, cpu=True, python="py")
    assert argv[:3] == ["py", "-m", "vllm.entrypoints.openai.api_server"]
    joined = " ".join(argv)
    for expected in (
        f"--model {tmp_path}",
        "--served-model-name smol",
        "--host 127.0.0.1",
        "--port 8123",
        "--max-model-len 2048",
        "--dtype bfloat16",
    ):
        assert expected in joined
    assert "--enforce-eager" in argv
    assert argv[-2:] == ["--seed", "7"]
    assert "--enable-lora" not in argv and "--gpu-memory-utilization" not in argv


def test_vllm_command_hub_id_gpu_flags_and_no_eager() -> None:
    config = ServerConfig(enforce_eager=False, gpu_memory_utilization=0.5, tensor_parallel_size=2)
    argv = vllm_command(make_model(hub_id="org/model"), config, "::1", 9000, cpu=False)
    assert argv[argv.index("--model") + 1] == "org/model"
    assert "--enforce-eager" not in argv
    assert argv[argv.index("--gpu-memory-utilization") + 1] == "0.5"
    assert argv[argv.index("--tensor-parallel-size") + 1] == "2"
    cpu_argv = vllm_command(make_model(hub_id="org/model"), config, "::1", 9000, cpu=True)
    assert "--gpu-memory-utilization" not in cpu_argv


def test_vllm_command_lora_modules(tmp_path: Path) -> None:
    config = ServerConfig(
        lora={"planner": tmp_path / "p", "actor": tmp_path / "a,b"}, max_lora_rank=32
    )
    argv = vllm_command(make_model(tmp_path), config, "127.0.0.1", 1, cpu=True)
    at = argv.index("--enable-lora")
    assert argv[at + 1 : at + 5] == ["--max-lora-rank", "32", "--max-loras", "2"]
    assert argv[at + 5] == "--lora-modules"
    actor, planner = argv[at + 6 : at + 8]
    assert json.loads(actor) == {"name": "actor", "path": str(tmp_path / "a,b")}
    assert planner == f"planner={tmp_path / 'p'}"


def test_config_rejects_a_rank_vllm_refuses(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_lora_rank"):
        ServerConfig(lora={"planner": tmp_path}, max_lora_rank=12)  # type: ignore[arg-type]


def test_vllm_command_asks_for_cached_token_details(tmp_path: Path) -> None:
    argv = vllm_command(make_model(tmp_path), ServerConfig(), "127.0.0.1", 1, cpu=True)
    assert "--enable-prompt-tokens-details" in argv


def test_server_env_auto_binds_all_available_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_command, "available_cpus", lambda: [0, 1, 2, 3])
    env = server_env(ServerConfig(kv_cache_gib=1), cpu=True, offline=True, base={"A": "b"})
    assert env["A"] == "b"
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "1"
    assert env["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "0"
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == "0-3"
    assert env["HF_HUB_OFFLINE"] == "1" and env["VLLM_NO_USAGE_STATS"] == "1"


def test_server_env_vllm_default_explicit_list_and_gpu() -> None:
    vllm_default = server_env(
        ServerConfig(cpu_threads_bind="vllm"), cpu=True, offline=False, base={}
    )
    assert "VLLM_CPU_OMP_THREADS_BIND" not in vllm_default
    assert "VLLM_CPU_NUM_OF_RESERVED_CPU" not in vllm_default
    assert "HF_HUB_OFFLINE" not in vllm_default
    explicit = server_env(ServerConfig(cpu_threads_bind="0-1"), cpu=True, offline=True, base={})
    assert explicit["VLLM_CPU_OMP_THREADS_BIND"] == "0-1"
    gpu = server_env(ServerConfig(), cpu=False, offline=True, base={})
    assert not any(key.startswith("VLLM_CPU_") for key in gpu)


def test_server_env_drops_the_passive_openmp_policy_billp_chose() -> None:
    from billp.common.torch_threads import PASSIVE_OMP_MARK

    chosen_by_billp = {"OMP_WAIT_POLICY": "PASSIVE", PASSIVE_OMP_MARK: "1"}
    env = server_env(ServerConfig(), cpu=True, offline=True, base=chosen_by_billp)
    assert "OMP_WAIT_POLICY" not in env and PASSIVE_OMP_MARK not in env
    chosen_by_user = server_env(
        ServerConfig(), cpu=True, offline=True, base={"OMP_WAIT_POLICY": "ACTIVE"}
    )
    assert chosen_by_user["OMP_WAIT_POLICY"] == "ACTIVE"


def test_fractional_kv_cache_is_refused_by_the_config() -> None:
    with pytest.raises(ValueError, match="kv_cache_gib"):
        ServerConfig(kv_cache_gib=1.5)  # type: ignore[arg-type]


def test_format_cpu_list() -> None:
    assert format_cpu_list([0]) == "0"
    assert format_cpu_list([3, 0, 1, 2, 5, 7, 8]) == "0-3,5,7-8"
    with pytest.raises(ValueError):
        format_cpu_list([])


def test_on_cpu_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    def missing(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert on_cpu() is False
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert on_cpu() is True
    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: object())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert on_cpu() is True  # vllm-cpu installed


VLLM_METRICS = """\
# HELP python_gc_objects_collected_total Objects collected during gc
# TYPE python_gc_objects_collected_total counter
python_gc_objects_collected_total{generation="0"} 21453.0
python_gc_objects_collected_total{generation="1"} 3107.0
# HELP python_info Python platform information
# TYPE python_info gauge
python_info{implementation="CPython",major="3",minor="12",patchlevel="3",version="3.12.3"} 1.0
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 1.2345344e+09
# HELP vllm:prefix_cache_queries_total Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{engine="0",model_name="smollm2"} 4096.0
vllm:prefix_cache_queries_total{engine="1",model_name="smollm2"} 1024.0
# HELP vllm:prefix_cache_queries_created Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries_created gauge
vllm:prefix_cache_queries_created{engine="0",model_name="smollm2"} 1.7961856542420878e+09
vllm:prefix_cache_queries_created{engine="1",model_name="smollm2"} 1.7961856542421181e+09
# HELP vllm:prefix_cache_hits_total Prefix cache hits, in terms of number of cached tokens.
# TYPE vllm:prefix_cache_hits_total counter
vllm:prefix_cache_hits_total{engine="0",model_name="smollm2"} 2560.0
vllm:prefix_cache_hits_total{engine="1",model_name="smollm2"} 512.0
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{engine="0",model_name="smollm2"} 4100.0
vllm:prompt_tokens_total{engine="1",model_name="smollm2"} 1030.0
# HELP vllm:prompt_tokens_created Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_created gauge
vllm:prompt_tokens_created{engine="0",model_name="smollm2"} 1.7961856542421567e+09
vllm:prompt_tokens_created{engine="1",model_name="smollm2"} 1.796185654242166e+09
# HELP vllm:generation_tokens_total Number of generation tokens processed.
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{engine="0",model_name="smollm2"} 812.0
vllm:generation_tokens_total{engine="1",model_name="smollm2"} 190.0
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="smollm2"} 2.0
vllm:num_requests_running{engine="1",model_name="smollm2"} 0.0
# HELP vllm:request_success_total Count of successfully processed requests.
# TYPE vllm:request_success_total counter
vllm:request_success_total{engine="0",finished_reason="stop",model_name="smollm2"} 14.0
vllm:request_success_total{engine="0",finished_reason="length",model_name="smollm2"} 2.0
vllm:request_success_total{engine="1",finished_reason="stop",model_name="smollm2"} 4.0
# HELP vllm:e2e_request_latency_seconds Histogram of e2e request latency in seconds.
# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_bucket{engine="0",le="0.3",model_name="smollm2"} 1.0
vllm:e2e_request_latency_seconds_bucket{engine="0",le="1.0",model_name="smollm2"} 3.0
vllm:e2e_request_latency_seconds_bucket{engine="0",le="5.0",model_name="smollm2"} 4.0
vllm:e2e_request_latency_seconds_bucket{engine="0",le="+Inf",model_name="smollm2"} 5.0
vllm:e2e_request_latency_seconds_count{engine="0",model_name="smollm2"} 5.0
vllm:e2e_request_latency_seconds_sum{engine="0",model_name="smollm2"} 34.9
# HELP vllm:e2e_request_latency_seconds_created Histogram of e2e request latency in seconds.
# TYPE vllm:e2e_request_latency_seconds_created gauge
vllm:e2e_request_latency_seconds_created{engine="0",model_name="smollm2"} 1.7961856542422915e+09
"""
"""/metrics of a vLLM 0.32 server with two engines (prometheus_client's exposition, trimmed)."""


def test_prometheus_parsing_of_vllm_metrics() -> None:
    counters = parse_prometheus(VLLM_METRICS)
    assert counters == {
        "vllm:prefix_cache_queries_total": 5120.0,
        "vllm:prefix_cache_hits_total": 3072.0,
        "vllm:prompt_tokens_total": 5130.0,
        "vllm:generation_tokens_total": 1002.0,
    }
    # Names are sample names as exposed: a counter's family name (without _total) is no
    # sample, histogram parts keep their suffixes, _created series are separate samples.
    names = [
        "vllm:prompt_tokens",
        "vllm:prompt_tokens_created",
        "vllm:request_success_total",
        "vllm:num_requests_running",
        "vllm:e2e_request_latency_seconds",
        "vllm:e2e_request_latency_seconds_count",
        "vllm:e2e_request_latency_seconds_sum",
        "vllm:e2e_request_latency_seconds_bucket",
        "python_gc_objects_collected_total",
        "process_resident_memory_bytes",
    ]
    assert parse_prometheus(VLLM_METRICS, names) == {
        "vllm:prompt_tokens": 0.0,
        "vllm:prompt_tokens_created": pytest.approx(2 * 1.796185654242e9),
        "vllm:request_success_total": 20.0,
        "vllm:num_requests_running": 2.0,
        "vllm:e2e_request_latency_seconds": 0.0,
        "vllm:e2e_request_latency_seconds_count": 5.0,
        "vllm:e2e_request_latency_seconds_sum": 34.9,
        "vllm:e2e_request_latency_seconds_bucket": 13.0,
        "python_gc_objects_collected_total": 24560.0,
        "process_resident_memory_bytes": 1234534400.0,
    }


def test_prometheus_parsing_skips_only_unreadable_lines(caplog: pytest.LogCaptureFixture) -> None:
    help_line = "# HELP vllm:generation_tokens_total"
    broken = VLLM_METRICS.replace(help_line, f"vllm:prompt_tokens_total{{engine=0}} 7\n{help_line}")
    with caplog.at_level("WARNING", logger="billp.llm.server"):
        counters = parse_prometheus(broken)
    assert counters == parse_prometheus(VLLM_METRICS)  # the counters after it still count
    assert "unreadable metric line: vllm:prompt_tokens_total{engine=0} 7" in caplog.text
    # A counter typed without the _total suffix is read under its OpenMetrics sample name.
    plain = "# TYPE vllm:generation_tokens counter\nvllm:generation_tokens 4\n"
    assert parse_prometheus(plain)["vllm:generation_tokens_total"] == 4.0


def test_server_root_and_prometheus_parsing() -> None:
    assert server_root("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000"
    assert server_root("http://h:1/v1/") == "http://h:1"
    assert server_root("http://h:1/proxy/v1") == "http://h:1/proxy"
    text = (
        "# TYPE vllm:generation_tokens_total counter\n"
        'vllm:generation_tokens_total{model_name="a b}"} 5\n'
        "vllm:generation_tokens_total 2.5 1700000000\n"
        "vllm:generation_tokens_created 1.7e9\n"
        'vllm:prompt_tokens_total{x="1"} NaN-ish\n'
    )
    counters = parse_prometheus(text)
    assert counters["vllm:generation_tokens_total"] == 7.5
    assert counters["vllm:prompt_tokens_total"] == 0.0


def test_preloaded_libraries_are_found_or_named_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    from billp.llm.server import command

    monkeypatch.setattr(
        command, "PRELOAD_LIBRARIES", {"tcmalloc": ("c",), "iomp": ("billp-no-such-lib",)}
    )
    env = server_env(
        ServerConfig(preload=["tcmalloc"]), cpu=True, offline=True, base={"LD_PRELOAD": "x.so"}
    )
    assert env["LD_PRELOAD"].startswith("libc.so") and env["LD_PRELOAD"].endswith(":x.so")
    assert "LD_PRELOAD" not in server_env(ServerConfig(), cpu=True, offline=True, base={})
    with pytest.raises(ValueError, match=r"llm.server.preload names 'iomp'"):
        server_env(ServerConfig(preload=["iomp"]), cpu=True, offline=True, base={})


def test_auto_dtype_is_bfloat16_only_where_the_cpu_computes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from billp.llm.server import command

    auto = ServerConfig()
    monkeypatch.setattr(command, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert command.resolve_dtype(auto, cpu=True) == "float32"
    monkeypatch.setattr(command, "cpu_flags", lambda: frozenset({"avx2", "avx512_bf16"}))
    assert command.resolve_dtype(auto, cpu=True) == "bfloat16"
    assert command.resolve_dtype(auto, cpu=False) == "auto"
    assert command.resolve_dtype(ServerConfig(dtype="float16"), cpu=True) == "float16"


def test_prefills_are_never_cut_unless_asked(tmp_path: Path) -> None:
    """vllm-cpu stops on a seeded request whose prefill is cut: one step per prefill."""
    argv = vllm_command(make_model(tmp_path), ServerConfig(), "127.0.0.1", 1, cpu=True)
    joined = " ".join(argv)
    assert "--no-enable-chunked-prefill --max-num-batched-tokens 4096" in joined
    chunked = ServerConfig(chunked_prefill=True)
    assert "--no-enable-chunked-prefill" not in vllm_command(
        make_model(tmp_path), chunked, "127.0.0.1", 1, cpu=True
    )


def test_an_eager_cpu_server_compiles_nothing_at_run_time() -> None:
    eager = server_env(ServerConfig(enforce_eager=True), cpu=True, offline=True, base={})
    assert eager["TORCHDYNAMO_DISABLE"] == "1"
    compiled = server_env(ServerConfig(enforce_eager=False), cpu=True, offline=True, base={})
    assert "TORCHDYNAMO_DISABLE" not in compiled
    assert "TORCHDYNAMO_DISABLE" not in server_env(ServerConfig(), cpu=False, offline=True, base={})
