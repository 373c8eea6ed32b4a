"""Read a configuration directory as it was at a git revision (for `gateway dpia diff REV1 REV2`)."""

from __future__ import annotations

import io
import re
import subprocess
import tarfile
from pathlib import Path

from gateway.policies.loader import FILES


class RevisionError(Exception):
    """The revision or the configuration path in it cannot be read."""


def _git(args: list[str], cwd: Path) -> bytes:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False, timeout=60)
    except FileNotFoundError as exc:
        raise RevisionError("git is not installed") from exc
    if done.returncode != 0:
        raise RevisionError(done.stderr.decode(errors="replace").strip() or f"git {' '.join(args)} failed")
    return done.stdout


def config_at(revision: str, config_dir: Path, into: Path) -> Path:
    """Extract `config_dir` as it was at `revision` under `into`; return the extracted directory.

    `config_dir` is a path in the working tree (e.g. config/lvv); its repository is found from it.
    A configuration from before retention.yaml existed is read with no retention rules.
    """
    if revision.startswith("-"):
        raise RevisionError(f"'{revision}' is not a revision")
    anchor = config_dir if config_dir.is_dir() else Path.cwd()
    root = Path(_git(["rev-parse", "--show-toplevel"], anchor.resolve()).decode().strip())
    relative = config_dir.resolve().relative_to(root).as_posix()
    archive = _git(["archive", "--format=tar", f"{revision}:{relative}"], root)
    target = into / re.sub(r"[^A-Za-z0-9._-]", "_", revision)
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    if not any(target.iterdir()):
        raise RevisionError(f"{relative} is empty or absent at {revision}")
    for name in FILES:
        if name == "retention.yaml" and not (target / name).exists():
            (target / name).write_text("[]\n", encoding="utf-8")
    return target
