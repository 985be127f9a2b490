"""The port the vLLM server listens on: the configured one when free, else one the OS picks."""

from __future__ import annotations

import logging
import socket

# The logger of the module this one was split from: log lines (their format shows the
# logger) and filters on "billp.llm.server" stay as they were.
logger = logging.getLogger("billp.llm.server")


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
