"""A process that imports billp once and forks a child per CLI run (fault-injection tests).

Importing billp (torch, faiss, transformers) takes seconds; a forked child starts at once.
Protocol: one JSON request per stdin line ``{"argv", "faults", "stdout", "stderr", "cwd"}``,
one JSON reply per stdout line ``{"rc"}`` (a negative rc is the signal that ended the child).
The server itself never reaches a fault point, runs no event loop and starts no threads.
"""

from __future__ import annotations

import json
import os
import sys
import traceback


def _child(request: dict) -> None:
    out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(out, 1)
    os.dup2(err, 2)
    os.close(out)
    os.close(err)
    code = 1
    try:
        os.chdir(request.get("cwd") or os.getcwd())
        from billp.common import faults
        from billp.simulate import main

        faults.configure(request.get("faults"))
        code = main(request["argv"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    import billp.runner
    import billp.simulate  # noqa: F401

    reply = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        _, status = os.waitpid(pid, 0)
        rc = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        reply.write(json.dumps({"rc": rc}) + "\n")
        reply.flush()


if __name__ == "__main__":
    serve()
