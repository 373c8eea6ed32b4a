"""Write the register and the DPIA into `<out>/<config name>/`, and check that they are current."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from gateway.dpia.document import human_ids
from gateway.dpia.dpia_doc import build_document
from gateway.dpia.human import extract, mask
from gateway.dpia.jsontext import dumps
from gateway.dpia.lang import speaking
from gateway.dpia.register import build_register
from gateway.dpia.register_md import build_register_document
from gateway.dpia.render_html import render_html
from gateway.dpia.render_md import render_markdown
from gateway.dpia.versions import merged_index
from gateway.i18n import DEFAULT_LOCALE, LOCALES
from gateway.policies.loader import policy_version
from gateway.policies.model import PolicyConfig

REGISTER_JSON = "register.json"
REGISTER_MD = "register.md"
DPIA_MD = "dpia.md"
DPIA_HTML = "dpia.html"
VERSIONS = "versions.json"


# A human section that still holds a placeholder, in any language (people wrote nothing there yet).
_UNTOUCHED = re.compile(r"\*\*(To be assessed|Te beoordelen)\.\*\*[^\n]*")


class DocumentsError(Exception):
    """The existing documents cannot be read back safely (broken human markers, unreadable index)."""


def output_dir(out: Path, config: PolicyConfig) -> Path:
    """Return the directory the documents of this configuration live in."""
    return Path(out) / config.meta.name


def read_back(directory: Path) -> tuple[dict[str, str], dict[str, Any] | None]:
    """Return the human sections of the existing DPIA and the existing version index (if any)."""
    human: dict[str, str] = {}
    index: dict[str, Any] | None = None
    dpia = directory / DPIA_MD
    if dpia.exists():
        try:
            human = extract(dpia.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise DocumentsError(f"{dpia}: {exc}; fix the markers before regenerating, or text would be lost") from exc
    versions = directory / VERSIONS
    if versions.exists():
        try:
            index = json.loads(versions.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise DocumentsError(f"{versions}: not valid JSON ({exc})") from exc
    return human, index


def file_name(name: str, locale: str) -> str:
    """Return the file a document is written to in `locale`: Dutch as named, others as dpia.en.md etc."""
    if locale == DEFAULT_LOCALE:
        return name
    stem, _dot, suffix = name.rpartition(".")
    return f"{stem}.{locale}.{suffix}"


def render_all(
    config: PolicyConfig, human: dict[str, str], index: dict[str, Any] | None, locale: str = DEFAULT_LOCALE
) -> dict[str, str]:
    """Return {file name: content} of every document in `locale`, with people's text kept in place.

    The Dutch documents are the ones of record, and carry the version index. Another language gives a
    rendition of the same documents under its own file names (dpia.en.md, ...), with the same human text.
    """
    # A section still holding its placeholder gets the current one (its words may have changed, or its
    # language); text people wrote is kept, also when its section no longer exists.
    human = {i: t for i, t in human.items() if not _UNTOUCHED.fullmatch(t.strip())}
    with speaking(locale):
        register = build_register(config)
        document = build_document(config)
        known = set(human_ids(document.sections))
        orphans = tuple(i for i in human if i not in known)
        if orphans:
            document = build_document(config, orphans)
        files = {
            REGISTER_JSON: dumps(register),
            REGISTER_MD: render_markdown(build_register_document(register, file_name(REGISTER_JSON, locale)), {}),
            DPIA_MD: render_markdown(document, human),
            DPIA_HTML: render_html(document, human),
        }
    if locale == DEFAULT_LOCALE:
        files[VERSIONS] = dumps(merged_index(index, config))
    return {file_name(name, locale): content for name, content in files.items()}


def generate(config: PolicyConfig, out: Path, locale: str = DEFAULT_LOCALE) -> list[Path]:
    """Write the documents of `config` under `out` in `locale` (Dutch: the documents of record); return the files.

    People write in the Dutch DPIA; a rendition in another language carries the same human text.
    """
    directory = output_dir(out, config)
    human, index = read_back(directory)
    files = render_all(config, human, index, locale)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in files.items():
        path = directory / name
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written


def _activities(register_text: str) -> dict[str, tuple[str, str]]:
    try:
        data = json.loads(register_text)
        return {a["id"]: (a["name"], a["versionId"]) for a in data["processingActivities"]}
    except (ValueError, KeyError, TypeError):
        return {}


def stale(config: PolicyConfig, out: Path) -> list[str]:
    """Return what is stale in the documents of `config` under `out` (empty: they are current).

    The documents are regenerated in memory and compared with the files; what people wrote in the
    human sections is ignored.
    """
    directory = output_dir(out, config)
    if not directory.is_dir():
        return [f"{directory} does not exist: the documents were never generated"]
    human, index = read_back(directory)
    expected = render_all(config, human, index)
    problems: list[str] = []
    version = policy_version(config)
    if index is None or version not in index.get("policyVersions", {}):
        problems.append(f"the configuration changed: policy version {version} is not in {directory / VERSIONS}")
    register = directory / REGISTER_JSON
    if register.exists():
        before, after = _activities(register.read_text(encoding="utf-8")), _activities(expected[REGISTER_JSON])
        for activity, (name, new) in after.items():
            if activity not in before:
                problems.append(f"processing activity '{name}' ({activity}) is not in the register")
            elif before[activity][1] != new:
                problems.append(
                    f"processing activity '{name}' changed: register has version {before[activity][1]}, "
                    f"the configuration gives {new}"
                )
        problems += [
            f"processing activity '{name}' ({activity}) is in the register but not in the configuration"
            for activity, (name, _) in before.items()
            if activity not in after
        ]
    for locale in LOCALES:
        # A rendition in another language is checked when one was written.
        if locale != DEFAULT_LOCALE and (directory / file_name(DPIA_MD, locale)).exists():
            expected.update(render_all(config, human, index, locale))
    for name, content in expected.items():
        path = directory / name
        if not path.exists():
            problems.append(f"{path} is missing")
        elif mask(path.read_text(encoding="utf-8")) != mask(content):
            problems.append(f"{path} is stale")
    return problems
