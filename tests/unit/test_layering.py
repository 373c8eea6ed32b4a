"""The layers hold, read from the source with `ast`: role decisions belong to the policy, endpoints read
the log and the records only after the gate granted it, and the policy imports no framework."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = ROOT / "gateway"

# -- helpers ---------------------------------------------------------------------------------------


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=rel(path))


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(node: ast.ImportFrom, path: Path) -> str:
    """Return the absolute module of a `from ... import` (relative imports resolved against `path`)."""
    if node.level == 0:
        return node.module or ""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


@dataclass(frozen=True)
class Imported:
    module: str  # the module imported from, e.g. gateway.store.records
    names: tuple[str, ...]  # the names taken from it (empty: the module itself)
    line: int


def imports(tree: ast.Module, path: Path) -> Iterator[Imported]:
    """Yield every import anywhere in the module (also inside functions), as absolute module names.

    `from gateway.audit import repository` yields module gateway.audit.repository.
    """
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Imported(alias.name, (), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = resolve(node, path)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if (GATEWAY.parent / (submodule.replace(".", "/") + ".py")).exists():
                    yield Imported(submodule, (), node.lineno)
                else:
                    yield Imported(base, (alias.name,), node.lineno)


def files(*patterns: str) -> list[Path]:
    found = sorted({p for pattern in patterns for p in ROOT.glob(pattern)})
    assert found, f"no files match {patterns}: the layout changed, update this test"
    return found


# -- (a) no hand-written role checks at the edges ------------------------------------------------------

# The edges that used to decide roles by hand; who may do what is oversight.yaml's (decide_oversight).
ROLE_FREE = (
    "gateway/api/*.py",
    "gateway/web/*.py",
    "gateway/evidence/web.py",
    "gateway/evidence/api.py",
    "gateway/evidence/access.py",
    "gateway/outbox/acks.py",
    "gateway/lifecycle/rehearsal_api.py",
    "gateway/lifecycle/service.py",
)

# Known role comparisons that are not yet decided by the gate, each with why it is tolerated. A new one
# fails the test; fixing one of these fails `test_every_tolerated_role_check_still_exists` until removed.
TOLERATED_ROLE_CHECKS: dict[tuple[str, str], str] = {}


def _is_role(node: ast.expr) -> bool:
    """Return whether an expression reads an acting role (`ctx.role`, `session.role`, `role`, `acting_role`)."""
    if isinstance(node, ast.Attribute):
        return node.attr == "role" or node.attr.endswith("_role")
    if isinstance(node, ast.Name):
        return node.id == "role" or node.id.endswith("_role")
    return False


def _literal_strings(node: ast.expr) -> tuple[str, ...] | None:
    """Return the strings of a string literal or a tuple/list/set of them (None: not such a literal)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return (node.value,)
    if isinstance(node, ast.Tuple | ast.List | ast.Set) and node.elts:
        values = [_literal_strings(e) for e in node.elts]
        if all(v is not None and len(v) == 1 for v in values):
            return tuple(v[0] for v in values if v is not None)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in {"frozenset", "set"}:
        return _literal_strings(node.args[0]) if len(node.args) == 1 else None
    return None


def _module_constants(tree: ast.Module) -> dict[str, tuple[str, ...]]:
    """Return the module-level names bound to a string literal or a collection of them."""
    out: dict[str, tuple[str, ...]] = {}
    for node in tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        strings = _literal_strings(value) if value is not None else None
        if strings is not None:
            out.update({t.id: strings for t in targets if isinstance(t, ast.Name)})
    return out


def _constants_in_scope(tree: ast.Module, path: Path) -> dict[str, tuple[str, ...]]:
    """Return the string constants a module defines or imports from another gateway module."""
    known = _module_constants(tree)
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            source = GATEWAY.parent / (resolve(node, path).replace(".", "/") + ".py")
            if source.exists():
                theirs = _module_constants(parse(source))
                known.update({a.asname or a.name: theirs[a.name] for a in node.names if a.name in theirs})
    return known


@dataclass(frozen=True)
class RoleCheck:
    file: str
    function: str
    line: int
    text: str


def role_checks(source: str, file: str, constants: dict[str, tuple[str, ...]] | None = None) -> list[RoleCheck]:
    """Return every comparison of an acting role against a string literal (or a constant holding them)."""
    tree = ast.parse(source)
    constants = constants if constants is not None else _module_constants(tree)
    found: list[RoleCheck] = []

    def literal(node: ast.expr) -> bool:
        if _literal_strings(node) is not None:
            return True
        return isinstance(node, ast.Name) and node.id in constants

    def visit(node: ast.AST, function: str) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(_is_role(o) for o in operands) and any(literal(o) for o in operands):
                found.append(RoleCheck(file, function, node.lineno, ast.unparse(node)))
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(tree, "<module>")
    return found


def tree_role_checks() -> list[RoleCheck]:
    out: list[RoleCheck] = []
    for path in files(*ROLE_FREE):
        tree = parse(path)
        out.extend(role_checks(path.read_text(encoding="utf-8"), rel(path), _constants_in_scope(tree, path)))
    return out


def test_no_edge_module_decides_a_role_by_comparing_it_with_a_role_name() -> None:
    untolerated = [c for c in tree_role_checks() if (c.file, c.function) not in TOLERATED_ROLE_CHECKS]
    assert not untolerated, "role decisions belong to oversight.yaml / rules.yaml, not the edge:\n" + "\n".join(
        f"  {c.file}:{c.line} in {c.function}(): {c.text}" for c in untolerated
    )


def test_every_tolerated_role_check_still_exists() -> None:
    present = {(c.file, c.function) for c in tree_role_checks()}
    stale = set(TOLERATED_ROLE_CHECKS) - present
    assert not stale, f"remove these from TOLERATED_ROLE_CHECKS, they are gone: {sorted(stale)}"


@pytest.mark.parametrize(
    "snippet",
    [
        'if ctx.role != "jurist":\n    raise Problem(403, "forbidden", "Jurists only.")',
        'if ctx.role == "privacy_officer":\n    pass',
        'allowed = request.role in ("jurist", "privacy_officer")',
        'if "jurist" == session.role:\n    pass',
        'OFFICERS = frozenset({"privacy_officer"})\nif role not in OFFICERS:\n    pass',
        'if ctx.acting_role is not None and ctx.acting_role in ["jurist"]:\n    pass',
    ],
)
def test_a_role_check_added_to_the_exchange_endpoints_would_be_caught(snippet: str) -> None:
    path = GATEWAY / "api" / "exchange.py"
    body = "\n".join(f"    {line}" for line in snippet.splitlines())
    source = path.read_text(encoding="utf-8") + f"\n\ndef read_participant_for_jurists(ctx):\n{body}\n"
    tree = ast.parse(source)
    constants = {**_constants_in_scope(parse(path), path), **_module_constants(tree)}
    # Module-level constants of the snippet live inside the function here; bind them as the module would.
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and (strings := _literal_strings(node.value)) is not None:
            constants.update({t.id: strings for t in node.targets if isinstance(t, ast.Name)})
    checks = role_checks(source, rel(path), constants)
    assert [c.function for c in checks] == ["read_participant_for_jurists"]


@pytest.mark.parametrize(
    "snippet",
    [
        "grant = authorizer.oversee(ctx, event, OversightAction.AUDIT_REVIEW)",
        'entry = {"role": ctx.role, "purpose": "intake"}',
        'if ctx.purpose == "intake":\n    pass',
        "if ctx.role is None:\n    pass",
    ],
)
def test_asking_the_gate_or_logging_a_role_is_not_a_role_check(snippet: str) -> None:
    assert role_checks(snippet, "snippet.py") == []


# -- (b) endpoints read the log and the records only through the gate --------------------------------

# Repositories that read audit entries, participants' records, notices or evidence documents.
READING_REPOSITORIES = (
    "gateway.audit.repository",
    "gateway.store.records",
    "gateway.outbox.repository",
    "gateway.evidence.repository",
)


@dataclass(frozen=True)
class Allowance:
    reason: str
    names: frozenset[str] | None = None  # only these names may be imported (None: the module itself)
    gated_calls: frozenset[str] = frozenset()  # calls allowed only in a function that takes a gate grant


# An endpoint module may import a reading repository only as listed here, with the reason.
ALLOWED_READERS: dict[tuple[str, str], Allowance] = {
    ("gateway/api/audit_log.py", "gateway.audit.repository"): Allowance(
        "own_entries reads entries_of_organisation only with an AuditReviewGrant from oversight_guard, and "
        "records the read before answering; the other calls are public checkpoints, keys and proofs",
        gated_calls=frozenset({"entries_of_organisation", "entries"}),
    ),
    ("gateway/api/exchange.py", "gateway.store.records"): Allowance(
        "imports the DataDestroyed exception only; records are read by ExchangeService with an AuthorizedAccess",
        names=frozenset({"DataDestroyed"}),
    ),
    ("gateway/api/operations.py", "gateway.outbox.repository"): Allowance(
        "/metrics calls Outbox.counts only: how many notices are in each status, no notice, organisation "
        "or participant (the outbox backlog gauge)",
        names=frozenset({"Outbox"}),
    ),
    ("gateway/evidence/web.py", "gateway.evidence.repository"): Allowance(
        "imports the DocumentSummary type only; documents are listed by EvidenceAccess for a gate-made Viewer",
        names=frozenset({"DocumentSummary"}),
    ),
}


def endpoint_modules() -> list[Path]:
    """Return the modules that import FastAPI or Starlette: the HTTP edge."""
    out = []
    for path in files("gateway/**/*.py"):
        tree = parse(path)
        if any(i.module.split(".")[0] in {"fastapi", "starlette"} for i in imports(tree, path)):
            out.append(path)
    return out


def _reads(imported: Imported) -> str | None:
    for repo in READING_REPOSITORIES:
        if imported.module == repo or imported.module.startswith(repo + "."):
            return repo
    return None


def _takes_grant(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    params = [*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs]
    return any(p.annotation is not None and "Grant" in ast.unparse(p.annotation) for p in params)


def ungated_calls(tree: ast.Module, names: frozenset[str]) -> list[str]:
    """Return the calls of `names` (as `x.name(...)` or `name(...)`) outside a function that takes a grant."""
    found: list[str] = []

    def visit(node: ast.AST, gated: bool) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            gated = _takes_grant(node)
        if isinstance(node, ast.Call) and not gated:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if called in names:
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
        for child in ast.iter_child_nodes(node):
            visit(child, gated)

    visit(tree, False)
    return found


def test_the_http_edge_is_found() -> None:
    found = {rel(p) for p in endpoint_modules()}
    assert {
        "gateway/api/audit_log.py",
        "gateway/api/exchange.py",
        "gateway/api/officer.py",
        "gateway/evidence/api.py",
        "gateway/evidence/web.py",
        "gateway/lifecycle/rehearsal_api.py",
        "gateway/web/routes.py",
    } <= found


def reader_violations(path: Path, tree: ast.Module) -> list[str]:
    problems: list[str] = []
    for imported in imports(tree, path):
        repo = _reads(imported)
        if repo is None:
            continue
        allowance = ALLOWED_READERS.get((rel(path), repo))
        where = f"{rel(path)}:{imported.line} imports {repo}{'.' + ','.join(imported.names) if imported.names else ''}"
        if allowance is None:
            problems.append(f"{where}: an endpoint reads through a service that takes a gate grant")
        elif allowance.names is not None and not (imported.names and set(imported.names) <= allowance.names):
            problems.append(f"{where}: only {sorted(allowance.names)} may be imported ({allowance.reason})")
    return problems


def test_no_endpoint_module_imports_a_reading_repository_unless_listed_with_its_reason() -> None:
    problems = [p for path in endpoint_modules() for p in reader_violations(path, parse(path))]
    assert not problems, "\n".join(problems)


def test_an_allowed_endpoint_calls_the_entry_readers_only_with_a_gate_grant() -> None:
    problems = []
    for (file, _repo), allowance in ALLOWED_READERS.items():
        if allowance.gated_calls:
            problems += [f"{file} {c}" for c in ungated_calls(parse(ROOT / file), allowance.gated_calls)]
    assert not problems, "\n".join(problems)


def test_every_allowed_reader_is_still_an_endpoint_importing_that_repository() -> None:
    edge = {rel(p): p for p in endpoint_modules()}
    for file, repo in ALLOWED_READERS:
        assert file in edge, f"{file} is no longer an endpoint module: remove it from ALLOWED_READERS"
        assert any(_reads(i) == repo for i in imports(parse(edge[file]), edge[file])), (file, repo)


def test_a_new_endpoint_reading_the_log_or_the_records_would_be_caught() -> None:
    path = GATEWAY / "api" / "exchange.py"
    source = (
        path.read_text(encoding="utf-8")
        + "\nfrom gateway.audit.repository import entries_of_organisation\nfrom gateway.store import records\n"
    )
    problems = reader_violations(path, ast.parse(source))
    assert len(problems) == 2
    assert "gateway.audit.repository" in problems[0]
    assert "only ['DataDestroyed']" in problems[1]


def test_an_entry_read_outside_a_granted_function_would_be_caught() -> None:
    source = (
        "def own_entries(grant: AuditReviewGrant, db):\n"
        "    return repository.entries_of_organisation(db, grant.organisation, 0, 10, 10)\n"
        "def peek(db, organisation: str):\n"
        "    return repository.entries_of_organisation(db, organisation, 0, 10, 10)\n"
    )
    found = ungated_calls(ast.parse(source), frozenset({"entries_of_organisation"}))
    assert len(found) == 1
    assert found[0].startswith("line 4:")


# -- (c) the policy is pure ------------------------------------------------------------------------------


def test_the_policy_package_imports_neither_fastapi_nor_sqlalchemy() -> None:
    problems = [
        f"{rel(path)}:{i.line} imports {i.module}"
        for path in files("gateway/policies/**/*.py")
        for i in imports(parse(path), path)
        if i.module.split(".")[0] in {"fastapi", "starlette", "sqlalchemy"}
    ]
    assert not problems, "\n".join(problems)
