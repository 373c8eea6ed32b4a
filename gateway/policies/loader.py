"""Load a configuration directory, validating every entry and collecting every error at once."""

from __future__ import annotations

import calendar
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import orjson
import yaml
from pydantic import BaseModel, ValidationError

from gateway.policies.model import (
    RECORD_KINDS,
    ConfigMeta,
    Covenant,
    DataCategory,
    Mandate,
    Operation,
    Organisation,
    OrganisationKind,
    OversightActivity,
    PolicyConfig,
    Purpose,
    RetentionRule,
    Sensitivity,
    SharingRule,
    SourceKind,
    SourceSystem,
)

FILES: dict[str, tuple[type[BaseModel], str]] = {
    "organisations.yaml": (Organisation, "organisation"),
    "covenants.yaml": (Covenant, "covenant"),
    "purposes.yaml": (Purpose, "purpose"),
    "categories.yaml": (DataCategory, "category"),
    "rules.yaml": (SharingRule, "rule"),
    "retention.yaml": (RetentionRule, "retention rule"),
}
# Optional files: a configuration without them simply has none of these entries.
OPTIONAL_FILES: dict[str, tuple[type[BaseModel], str]] = {
    "mandates.yaml": (Mandate, "mandate"),
    "oversight.yaml": (OversightActivity, "oversight activity"),
    "sources.yaml": (SourceSystem, "source"),
}


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys: a repeated `fields:` must not silently win."""


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key '{key}'", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    entry: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.entry}" if self.entry else self.file
        return f"{where}: {self.message}"


class ConfigError(Exception):
    """The configuration is invalid; `problems` names every file and entry at fault."""

    def __init__(self, directory: Path, problems: list[ConfigProblem]) -> None:
        self.directory = directory
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration in {directory} ({len(problems)} problems):\n{lines}")


def _format(exc: ValidationError) -> Iterable[str]:
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"])
        yield f"{loc}: {err['msg']}" if loc else err["msg"]


def _read_yaml(path: Path, problems: list[ConfigProblem]) -> Any:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except FileNotFoundError:
        problems.append(ConfigProblem(path.name, "", "file is missing"))
    except UnicodeDecodeError:
        problems.append(ConfigProblem(path.name, "", "file is not UTF-8 text"))
    except yaml.YAMLError as exc:
        problems.append(ConfigProblem(path.name, "", f"not valid YAML: {exc}"))
    else:
        if data is None:
            problems.append(ConfigProblem(path.name, "", "file is empty"))
        return data
    return None


def _entries(path: Path, model: type[M], kind: str, problems: list[ConfigProblem], invalid: set[str]) -> list[M]:
    raw = _read_yaml(path, problems)
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append(ConfigProblem(path.name, "", "must be a list of entries"))
        return []
    out: list[M] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        label = f"{kind} #{index + 1}"
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            label = f"{kind} '{item['id']}'"
        try:
            entry = model.model_validate(item)
        except ValidationError as exc:
            problems.extend(ConfigProblem(path.name, label, msg) for msg in _format(exc))
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                invalid.add(item["id"])
            continue
        entry_id = getattr(entry, "id", None)
        if entry_id in seen:
            problems.append(ConfigProblem(path.name, label, "duplicate id"))
            continue
        if entry_id is not None:
            seen.add(entry_id)
        out.append(entry)
    return out


def load_config(directory: Path) -> PolicyConfig:
    """Return the validated configuration in `directory`, or raise ConfigError listing every problem."""
    directory = Path(directory)
    problems: list[ConfigProblem] = []
    if not directory.is_dir():
        raise ConfigError(directory, [ConfigProblem(str(directory), "", "not a directory")])
    meta: ConfigMeta | None = None
    raw_meta = _read_yaml(directory / "meta.yaml", problems)
    if raw_meta is not None:
        try:
            meta = ConfigMeta.model_validate(raw_meta)
        except ValidationError as exc:
            problems.extend(ConfigProblem("meta.yaml", "", msg) for msg in _format(exc))
    invalid: set[str] = set()
    parts = {name: _entries(directory / name, model, kind, problems, invalid) for name, (model, kind) in FILES.items()}
    for name, (model, kind) in OPTIONAL_FILES.items():
        present = (directory / name).exists()
        parts[name] = _entries(directory / name, model, kind, problems, invalid) if present else []
    if meta is None or problems:
        problems.extend(_cross_check_parts(parts, invalid))
        raise ConfigError(directory, problems or [ConfigProblem("meta.yaml", "", "missing")])
    config = PolicyConfig(
        meta=meta,
        organisations=tuple(parts["organisations.yaml"]),
        covenants=tuple(parts["covenants.yaml"]),
        purposes=tuple(parts["purposes.yaml"]),
        categories=tuple(parts["categories.yaml"]),
        rules=tuple(parts["rules.yaml"]),
        retention=tuple(parts["retention.yaml"]),
        mandates=tuple(parts["mandates.yaml"]),
        oversight=tuple(parts["oversight.yaml"]),
        sources=tuple(parts["sources.yaml"]),
    )
    problems.extend(cross_check(config))
    if problems:
        raise ConfigError(directory, problems)
    return config


def _cross_check_parts(parts: dict[str, list[Any]], invalid: set[str]) -> list[ConfigProblem]:
    """Cross-check what did load, so that one run shows reference errors alongside schema errors."""
    meta = ConfigMeta(name="partial", title="", status="", disclaimer="", controller_contact="")
    partial = PolicyConfig.model_construct(
        meta=meta,
        organisations=tuple(parts["organisations.yaml"]),
        covenants=tuple(parts["covenants.yaml"]),
        purposes=tuple(parts["purposes.yaml"]),
        categories=tuple(parts["categories.yaml"]),
        rules=tuple(parts["rules.yaml"]),
        retention=tuple(parts["retention.yaml"]),
        mandates=tuple(parts["mandates.yaml"]),
        oversight=tuple(parts["oversight.yaml"]),
        sources=tuple(parts["sources.yaml"]),
    )
    return cross_check(partial, invalid)


def cross_check(config: PolicyConfig, invalid: set[str] | frozenset[str] = frozenset()) -> list[ConfigProblem]:
    """Return every broken reference or unlawful grant between the parts of a configuration.

    References to entries in `invalid` (which failed their own validation, already reported) are
    not reported again.
    """
    problems: list[ConfigProblem] = []
    orgs = {o.id: o for o in config.organisations}
    purposes = {p.id: p for p in config.purposes}
    categories = {c.id: c for c in config.categories}
    covenants = {c.id: c for c in config.covenants}
    known_regions = {r for o in orgs.values() for r in o.regions}
    known_roles = {r for o in orgs.values() for r in o.roles}
    kinds = {k.value for k in OrganisationKind}

    def add(file: str, label: str) -> Callable[[str], None]:
        return lambda message: problems.append(ConfigProblem(file, label, message))

    def unknown(ref: str, known: dict[str, Any] | set[str]) -> bool:
        return ref not in known and ref not in invalid

    for cov in config.covenants:
        say = add("covenants.yaml", f"covenant '{cov.id}'")
        for party in cov.parties:
            if unknown(party.organisation, orgs):
                say(f"party '{party.organisation}' is not an organisation in organisations.yaml")
        for region in cov.regions:
            if region not in known_regions:
                say(f"region '{region}' is not a region of any organisation")
    for cat in config.categories:
        say = add("categories.yaml", f"category '{cat.id}'")
        for source in cat.sources:
            if unknown(source, orgs) and source not in kinds:
                say(f"source '{source}' is neither an organisation nor a kind ({', '.join(sorted(kinds))})")
    for rule in config.rules:
        say = add("rules.yaml", f"rule '{rule.id}'")
        purpose = purposes.get(rule.purpose)
        if purpose is None and unknown(rule.purpose, purposes):
            say(f"purpose '{rule.purpose}' is not in purposes.yaml")
        elif purpose is not None and purpose.aggregate_only and rule.grants:
            say(f"purpose '{purpose.id}' is for aggregates only and cannot grant a person's record")
        for cov_id in rule.covenants:
            if unknown(cov_id, covenants):
                say(f"covenant '{cov_id}' is not in covenants.yaml")
        parties = {p.organisation for c in rule.covenants if c in covenants for p in covenants[c].parties}
        for org_id in rule.recipient.organisations:
            if unknown(org_id, orgs):
                say(f"recipient organisation '{org_id}' is not in organisations.yaml")
            elif org_id in orgs and org_id not in parties:
                say(f"recipient organisation '{org_id}' is not a party to any of the rule's covenants")
        recipients = [
            o for o in orgs.values() if o.id in rule.recipient.organisations or o.kind in rule.recipient.kinds
        ]
        if rule.during_legal_hold_after_end and purpose is not None and not purpose.legal_procedure:
            say(
                f"during_legal_hold_after_end is allowed only for a legal-procedure purpose, not '{purpose.id}' "
                "(set legal_procedure: true on the purpose)"
            )
        if Operation.REGISTER in rule.operations and purpose is not None and purpose.legal_procedure:
            # Registration is intake: a procedure about a participant presupposes one and never creates one.
            say(f"grants register, but purpose '{purpose.id}' is a legal procedure; only an intake purpose registers")
        for role in rule.recipient.roles:
            if role not in known_roles:
                say(f"role '{role}' is not a role of any organisation")
            elif recipients and all(role not in o.roles for o in recipients):
                say(f"role '{role}' is not a role of any organisation the rule names")
        for index, grant in enumerate(rule.grants):
            category = categories.get(grant.category)
            if category is None:
                if unknown(grant.category, categories):
                    say(f"grants[{index}]: category '{grant.category}' is not in categories.yaml")
                continue
            cat = category
            names = [f.name for f in cat.fields] if grant.fields == "*" else list(grant.fields)
            for name in names:
                if all(f.name != name for f in cat.fields):
                    say(f"grants[{index}]: field '{name}' is not a field of category '{cat.id}'")
                    continue
                kind = cat.field_sensitivity(name)
                if purpose is None:
                    continue
                if kind is Sensitivity.SPECIAL and purpose.art9_condition is None:
                    say(
                        f"grants special (art. 9) field '{cat.id}.{name}' but purpose '{purpose.id}' "
                        "names no art. 9(2) exception"
                    )
                if kind is Sensitivity.CRIMINAL and purpose.art10_condition is None:
                    say(
                        f"grants criminal (art. 10) field '{cat.id}.{name}' but purpose '{purpose.id}' "
                        "names no art. 10 basis"
                    )
            if {Operation.WRITE, Operation.REGISTER} & set(rule.operations):
                sources = set(cat.sources)
                writers = [o for o in recipients if o.id in sources or o.kind.value in sources]
                if not writers:
                    say(f"grants write on '{cat.id}' but none of its recipients is a source of that category")
    seen_subjects: set[str] = set()
    for retention in config.retention:
        say = add("retention.yaml", f"retention rule '{retention.id}'")
        if retention.applies_to not in categories and retention.applies_to not in RECORD_KINDS:
            if unknown(retention.applies_to, categories):
                say(f"applies_to '{retention.applies_to}' is neither a category nor one of {', '.join(RECORD_KINDS)}")
        if retention.applies_to in seen_subjects:
            say(f"'{retention.applies_to}' has more than one retention rule")
        seen_subjects.add(retention.applies_to)
    problems.extend(_cross_check_mandates(config, invalid))
    problems.extend(_cross_check_oversight(config, invalid))
    problems.extend(_cross_check_sources(config, invalid))
    return problems


def _cross_check_sources(config: PolicyConfig, invalid: set[str] | frozenset[str]) -> list[ConfigProblem]:
    """Return every broken reference of the source systems, and any two that serve one category and region."""
    problems: list[ConfigProblem] = []
    orgs = {o.id: o for o in config.organisations}
    categories = {c.id: c for c in config.categories}
    covenants = {c.id: c for c in config.covenants}
    served: dict[tuple[str, str], str] = {}
    for source in config.sources:

        def say(message: str, label: str = f"source '{source.id}'") -> None:
            problems.append(ConfigProblem("sources.yaml", label, message))

        org = orgs.get(source.organisation)
        if org is None:
            if source.organisation not in invalid:
                say(f"organisation '{source.organisation}' is not in organisations.yaml")
            continue
        for cat_id in source.categories:
            category = categories.get(cat_id)
            if category is None:
                if cat_id not in invalid:
                    say(f"category '{cat_id}' is not in categories.yaml")
                continue
            if org.id not in category.sources and org.kind.value not in category.sources:
                say(f"organisation '{org.id}' is not a source (bronhouder) of category '{cat_id}'")
            for region in org.regions:
                other = served.setdefault((cat_id, region), source.id)
                if other != source.id:
                    say(f"category '{cat_id}' in region '{region}' is already served by source '{other}'")
        for cov_id in source.covenants:
            cov = covenants.get(cov_id)
            if cov is None:
                if cov_id not in invalid:
                    say(f"covenant '{cov_id}' is not in covenants.yaml")
            elif org.id not in {p.organisation for p in cov.parties}:
                say(f"organisation '{org.id}' is not a party to covenant '{cov_id}'")
        endpoint = source.endpoint
        if source.kind is SourceKind.REST and endpoint is not None:
            if endpoint.auth.value == "private_key_jwt" and endpoint.token_url is None and endpoint.base_url:
                say("private_key_jwt needs the source's token_url")
    return problems


def _cross_check_oversight(config: PolicyConfig, invalid: set[str] | frozenset[str]) -> list[ConfigProblem]:
    """Return every broken reference of the oversight activities, and any that could reach records."""
    problems: list[ConfigProblem] = []
    orgs = {o.id: o for o in config.organisations}
    covenants = {c.id for c in config.covenants}
    purposes = {p.id for p in config.purposes}
    rule_purposes = {r.purpose for r in config.rules}
    for activity in config.oversight:
        label = f"oversight activity '{activity.id}'"

        def say(message: str, label: str = label) -> None:
            problems.append(ConfigProblem("oversight.yaml", label, message))

        if activity.id in rule_purposes:
            say("a sharing rule names this id as its purpose: an oversight activity never releases record contents")
        elif activity.id in purposes:
            say("the id is also a purpose in purposes.yaml; a processing activity is one or the other")
        for cov_id in activity.covenants:
            if cov_id not in covenants and cov_id not in invalid:
                say(f"covenant '{cov_id}' is not in covenants.yaml")
        for org_id in activity.recipient.organisations:
            if org_id not in orgs and org_id not in invalid:
                say(f"recipient organisation '{org_id}' is not in organisations.yaml")
        recipients = [
            o for o in orgs.values() if o.id in activity.recipient.organisations or o.kind in activity.recipient.kinds
        ]
        for role in activity.recipient.roles:
            if recipients and all(role not in o.roles for o in recipients):
                say(f"role '{role}' is not a role of any organisation the activity names")
    return problems


def _cross_check_mandates(config: PolicyConfig, invalid: set[str] | frozenset[str]) -> list[ConfigProblem]:
    """Return every broken reference of the mandates: organisations, covenants, rules."""
    problems: list[ConfigProblem] = []
    orgs = {o.id for o in config.organisations}
    covenants = {c.id: c for c in config.covenants}
    rules = {r.id: r for r in config.rules}
    claimed: dict[tuple[str, str], str] = {}
    for mandate in config.mandates:
        label = f"mandate '{mandate.id}'"

        def say(message: str, label: str = label) -> None:
            problems.append(ConfigProblem("mandates.yaml", label, message))

        for org in (mandate.mandator, *mandate.mandataries):
            if org not in orgs and org not in invalid:
                say(f"organisation '{org}' is not in organisations.yaml")
        for cov_id in mandate.covenants:
            cov = covenants.get(cov_id)
            if cov is None:
                if cov_id not in invalid:
                    say(f"covenant '{cov_id}' is not in covenants.yaml")
                continue
            parties = {p.organisation for p in cov.parties}
            for org in (mandate.mandator, *mandate.mandataries):
                if org in orgs and org not in parties:
                    say(f"organisation '{org}' is not a party to covenant '{cov_id}'")
        for rule_id in mandate.rules:
            rule = rules.get(rule_id)
            if rule is None:
                if rule_id not in invalid:
                    say(f"rule '{rule_id}' is not in rules.yaml")
                continue
            for cov_id in mandate.covenants:
                if cov_id in covenants and cov_id not in rule.covenants:
                    say(f"rule '{rule_id}' does not apply under covenant '{cov_id}'")
                    continue
                other = claimed.setdefault((rule_id, cov_id), mandate.id)
                if other != mandate.id:
                    say(f"rule '{rule_id}' under covenant '{cov_id}' is already carried by mandate '{other}'")
    return problems


def add_duration(moment: datetime, duration: str) -> datetime:
    """Return `moment` plus an ISO-8601 duration of years, months, weeks and days (calendar arithmetic)."""
    match = re.match(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?$", duration)
    if not match or duration == "P":
        raise ValueError(f"not an ISO-8601 date duration: {duration}")
    years, months, weeks, days = (int(g) if g else 0 for g in match.groups())
    month_index = moment.month - 1 + months + 12 * years
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day) + timedelta(weeks=weeks, days=days)


def policy_version(config: PolicyConfig) -> str:
    """Return the hash that identifies this exact policy (every audit entry records it)."""
    canonical = orjson.dumps(config.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return "sha256:" + hashlib.sha256(canonical).hexdigest()
