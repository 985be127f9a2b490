"""The vLLM server as a child process group: launch, wait until healthy, stop.

See :mod:`billp.llm.server` for the guarantees around shutdown.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from billp.common.provision import ProvisionedModel
from billp.config import ServerConfig
from billp.llm.server.command import CommandBuilder, on_cpu, server_env, vllm_command
from billp.llm.server.exit_hooks import install_exit_hooks, track, untrack
from billp.llm.server.health import HEALTH_PATH, await_healthy, wait_healthy
from billp.llm.server.ports import choose_port
from billp.llm.server.process_group import (
    STOP_GRACE_S,
    parent_death_hook,
    terminate_process_group,
)

# The logger of the module this one was split from: log lines (their format shows the
# logger) and filters on "billp.llm.server" stay as they were.
logger = logging.getLogger("billp.llm.server")


LOG_TAIL_LINES = 40


class ServerStartError(RuntimeError):
    """The server exited or did not become healthy; the message carries the log's tail."""


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file ('' if it does not exist)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


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
        install_exit_hooks()
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
                preexec_fn=parent_death_hook(),
            )
        self._argv, self._port, self._process = argv, port, process
        self._started_at = time.monotonic()
        track(self)
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
            if wait_healthy(self.root_url + HEALTH_PATH, deadline, self._check_exited):
                self._healthy()
                return self
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
            if await await_healthy(self.root_url + HEALTH_PATH, deadline, self._check_exited):
                self._healthy()
                return self
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
            untrack(self)
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
