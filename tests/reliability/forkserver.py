"""A fork server for the crash tests: ``sftdata`` commands as real child processes, without the import cost.

Twenty kill-and-restart cycles of ``python -m sftdata generate`` would spend most of their time
importing (openai, numba, langdetect: seconds per start on a busy 2-core runner), and a kill would
mostly land in an import. This process imports sftdata once, single-threaded, then for each command
forks a child that runs the real entry point ``sftdata.cli.main(argv)`` with its own stdout/stderr
files and environment. The child is an ordinary process: the test SIGKILLs or SIGINTs it by pid.

Protocol (one JSON object per line on stdin, one answer per line on stdout):
    {"run": [argv...], "env": {...}, "stdout": PATH, "stderr": PATH}  ->  {"pid": PID}
    {"wait": PID}                                                    ->  {"status": CODE or -SIGNAL}
"""

from __future__ import annotations

import json
import os
import signal
import sys


def _warm_imports() -> None:
    # everything a generate run imports, so that a forked child starts working at once
    import sftdata.cli  # noqa: F401
    import sftdata.cli.generate  # noqa: F401 (the CLI imports a command's module when it runs)
    import sftdata.generate.alpaca  # noqa: F401
    import sftdata.generate.self_instruct  # noqa: F401
    import sftdata.llm.openai_backend  # noqa: F401
    from sftdata.filter.rouge import RougeIndex
    from sftdata.text.lang import _langdetect

    _langdetect("warm the language detector up once")  # loads its profiles (a second)
    index = RougeIndex(tokenizer="auto", threshold=0.7)  # loads the compiled kernels
    index.add_many(["write a poem about the sea", "name three colours"])
    index.check("write a short poem about the sea")


def _child(request: dict) -> None:
    from sftdata.cli import main

    os.environ.update(request.get("env", {}))
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C behaves as in a fresh process
    code = 0
    try:
        main(list(request["run"]))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def serve() -> None:
    _warm_imports()
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if "run" in request:
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                try:
                    _child(request)
                finally:
                    os._exit(1)
            print(json.dumps({"pid": pid}), flush=True)
        elif "wait" in request:
            _, status = os.waitpid(int(request["wait"]), 0)
            code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            print(json.dumps({"status": code}), flush=True)


if __name__ == "__main__":
    serve()
