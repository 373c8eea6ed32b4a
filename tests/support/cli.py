"""Run the `gateway` command inside the test process: the same arguments, environment and working
directory a subprocess would get, its stdout and stderr captured, its exit status returned.

Starting the command as a process costs seconds on a busy machine (a new interpreter imports
everything); a test about what a command does, not about the process, calls `gateway.cli.main` here
instead. Tests about the process itself (the entry point, `gateway serve`, signals) keep a subprocess.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import traceback
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

GATEWAY = str(Path(sys.executable).parent / "gateway")  # the installed entry point, for process tests


@contextlib.contextmanager
def _environment(env: Mapping[str, str], cwd: Path) -> Iterator[None]:
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


def _stream() -> io.TextIOWrapper:
    """A text stream with a binary `.buffer`, as sys.stdout has (commands may write bytes to it)."""
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", newline="", write_through=True)


def _text(stream: io.TextIOWrapper) -> str:
    stream.flush()
    data: bytes = stream.buffer.getvalue()  # type: ignore[attr-defined]
    return data.decode("utf-8", errors="replace")


def run_cli(args: Sequence[str], cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `gateway ARGS` in this process as if in `cwd` with environment `env`; never raises for its failure."""
    from gateway.cli import main

    out, err = _stream(), _stream()
    with _environment(env, cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse errors, sys.exit in a command
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except Exception:  # what the interpreter does with an uncaught exception: traceback, status 1
            traceback.print_exc()
            code = 1
    result = subprocess.CompletedProcess([GATEWAY, *args], code, _text(out), _text(err))
    out.close()
    err.close()
    return result
