"""The `gateway dpia` commands: generate, check, diff and versions."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.policies.model import PolicyConfig

DEFAULT_OUT = Path("dpia")


def _config_dir(args: argparse.Namespace) -> Path:
    if args.config:
        return Path(args.config)
    from gateway.cli import load_settings

    return load_settings().config_dir


def _version(config: PolicyConfig) -> str:
    from gateway.policies.loader import policy_version

    return policy_version(config)


def _load(directory: Path) -> PolicyConfig | None:
    from gateway.policies.loader import ConfigError, load_config

    try:
        return load_config(directory)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None


def cmd_generate(args: argparse.Namespace) -> int:
    from gateway.dpia.generate import DocumentsError, generate

    config = _load(_config_dir(args))
    if config is None:
        return 1
    try:
        written = generate(config, Path(args.out), args.lang)
    except DocumentsError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    print(f"policy version {_version(config)}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from gateway.dpia.generate import DocumentsError, output_dir, stale

    directory = _config_dir(args)
    config = _load(directory)
    if config is None:
        return 1
    try:
        problems = stale(config, Path(args.out))
    except DocumentsError as exc:
        print(exc, file=sys.stderr)
        return 1
    if problems:
        print(f"DPIA and register for {directory} are STALE:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        print(f"regenerate with: gateway dpia generate --config {directory} --out {args.out}", file=sys.stderr)
        return 1
    print(f"{output_dir(Path(args.out), config)}: current for policy version {_version(config)}")
    return 0


def _side(spec: str, config_dir: Path, scratch: Path) -> Path:
    from gateway.dpia.revisions import config_at

    path = Path(spec)
    return path if path.is_dir() else config_at(spec, config_dir, scratch)


def cmd_diff(args: argparse.Namespace) -> int:
    from gateway.dpia.diff import explain
    from gateway.dpia.revisions import RevisionError

    with tempfile.TemporaryDirectory(prefix="dpia-diff-") as scratch:
        try:
            old_dir = _side(args.old, _config_dir(args), Path(scratch) / "old")
            new_dir = _side(args.new, _config_dir(args), Path(scratch) / "new")
        except RevisionError as exc:
            print(f"cannot read the configuration: {exc}", file=sys.stderr)
            return 2
        old, new = _load(old_dir), _load(new_dir)
        if old is None or new is None:
            return 2
    sentences = explain(old, new)
    print(f"From {args.old} ({_version(old)}) to {args.new} ({_version(new)}):")
    if not sentences:
        print("No change that a privacy officer needs to know of.")
    for sentence in sentences:
        print(f"- {sentence}")
    return 0


def cmd_versions(args: argparse.Namespace) -> int:
    from gateway.dpia.versions import versions_for

    config = _load(_config_dir(args))
    if config is None:
        return 1
    path = Path(args.out) / config.meta.name / "versions.json"
    if not path.exists():
        print(f"{path} does not exist: run gateway dpia generate", file=sys.stderr)
        return 1
    index: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    wanted = args.policy_version or _version(config)
    found = versions_for(index, wanted)
    if found is None:
        print(f"policy version {wanted} is not in {path}", file=sys.stderr)
        return 1
    print(json.dumps({"policyVersion": wanted, "activities": found}, indent=2))
    return 0


def add_commands(subparsers: Any) -> None:
    """Add `gateway dpia ...` to the command's subparsers."""
    dpia = subparsers.add_parser("dpia", help="processing register and DPIA").add_subparsers(dest="sub", required=True)
    config_help = "configuration directory (default: GATEWAY_CONFIG_DIR or config/lvv)"
    out_help = "base directory of the documents; they go in OUT/<config name>/ (default: dpia)"

    generate = dpia.add_parser("generate", help="write the register and the DPIA, keeping human sections")
    generate.add_argument("--config", help=config_help)
    generate.add_argument("--out", default=str(DEFAULT_OUT), help=out_help)
    generate.add_argument(
        "--lang",
        choices=("nl", "en"),
        default="nl",
        help="language of the documents (default nl, the documents of record; en writes dpia.en.md etc. beside them, "
        "with the human sections of the Dutch DPIA)",
    )
    generate.set_defaults(func=cmd_generate)

    check = dpia.add_parser("check", help="fail when the documents are stale for the configuration")
    check.add_argument("--config", help=config_help)
    check.add_argument("--out", default=str(DEFAULT_OUT), help=out_help)
    check.set_defaults(func=cmd_check)

    diff = dpia.add_parser("diff", help="explain the change between two config directories or git revisions")
    diff.add_argument("old", help="a configuration directory, or a git revision (e.g. HEAD~1)")
    diff.add_argument("new", help="a configuration directory, or a git revision (e.g. HEAD)")
    diff.add_argument("--config", help="the configuration path read at each revision (default: config/lvv)")
    diff.set_defaults(func=cmd_diff)

    versions = dpia.add_parser("versions", help="the activity versions in force under a policy version")
    versions.add_argument("policy_version", nargs="?", help="e.g. sha256:... (default: the current configuration)")
    versions.add_argument("--config", help=config_help)
    versions.add_argument("--out", default=str(DEFAULT_OUT), help=out_help)
    versions.set_defaults(func=cmd_versions)
