"""DPIA parts C (risks, section 16) and D (measures, section 17)."""

from __future__ import annotations

from gateway.dpia.document import Code, Human, Section, Strong, Text, bullets, para, table, text, to_assess
from gateway.dpia.lang import _, tr
from gateway.dpia.measures import INHERENT_RISKS, MEASURES, measure
from gateway.dpia.organisational import organisational_measure
from gateway.dpia.risk_model import level_word
from gateway.dpia.risks import Finding, level
from gateway.policies.model import PolicyConfig

EXAMPLES = 3


def _codes(ids: tuple[str, ...]) -> Text:
    spans: list[str | Code] = []
    for i, value in enumerate(ids):
        spans += [", " if i else "", Code(value)]
    return tuple(spans) or (_("none"),)


def _where(finding: Finding) -> str:
    shown = "; ".join(finding.occurrences[:EXAMPLES])
    more = len(finding.occurrences) - EXAMPLES
    return shown + ("; " + _("and {more} more (16.1)", more=more) if more > 0 else "")


def risks(found: list[Finding]) -> Section:
    config_rows: list[tuple[Text | str, ...]] = [
        (
            text(Code(f.id)),
            f.title,
            _where(f),
            level_word(f.likelihood),
            level_word(f.impact),
            text(Strong(level_word(f.level))),
            f.motivation,
        )
        for f in found
    ]
    inherent_rows: list[tuple[Text | str, ...]] = [
        (
            text(Code(r.id)),
            tr(r.title),
            tr(r.origin),
            level_word(r.likelihood),
            level_word(r.impact),
            text(Strong(level_word(level(r.likelihood, r.impact)))),
        )
        for r in INHERENT_RISKS
    ]
    where = Section(
        "s16-1",
        _("16.1 Where each risk shows in the configuration"),
        tuple(b for f in found for b in (para(Code(f.id), " ", f.title), bullets(list(f.occurrences)))),
    )
    return Section(
        "s16",
        _("16. Risks"),
        (
            para(
                _(
                    "Risks the configuration itself reveals, found by the generator. Likelihood and impact are "
                    "initial estimates from the configuration; the level follows from them (to be confirmed in the "
                    "human assessment below)."
                )
            ),
            table(
                ("ID", _("Risk"), _("Where"), _("Likelihood"), _("Impact"), _("Level"), _("Motivation")),
                config_rows,
            )
            if config_rows
            else para(_("The configuration reveals no risk the generator knows of.")),
            para(_("Risks of the processing itself, whatever the configuration:")),
            table(("ID", _("Risk"), _("Origin"), _("Likelihood"), _("Impact"), _("Level")), inherent_rows),
            Human(
                "risks-additional",
                to_assess(_("Risks the parties see that neither list names, with likelihood, impact and motivation.")),
            ),
        ),
        children=(where,) if found else (),
    )


def _measure_names(ids: tuple[str, ...]) -> Text:
    spans: list[str | Code] = []
    for i, mid in enumerate(ids):
        spans += ["; " if i else "", Code(mid), f" {tr(measure(mid).title)}"]
    return tuple(spans) or (_("none in the gateway"),)


def measures(config: PolicyConfig, found: list[Finding]) -> Section:
    measure_rows: list[tuple[Text | str, ...]] = [
        (text(Code(m.id)), tr(m.title), tr(m.description), _codes(m.tests)) for m in MEASURES
    ]
    against: list[tuple[Text | str, ...]] = [
        (
            text(Code(r.id)),
            tr(r.title),
            text(Strong(level_word(level(r.likelihood, r.impact)))),
            _measure_names(r.measures),
            organisational_measure(config, r.id),
        )
        for r in INHERENT_RISKS
    ]
    against += [
        (text(Code(f.id)), f.title, text(Strong(level_word(f.level))), _measure_names(f.measures), f.advice)
        for f in found
    ]
    residual = tuple(
        Human(
            f"residual-{rid.lower()}",
            to_assess(_("Residual risk of {risk} after the measures, and its owner.", risk="`" + rid + "`")),
        )
        for rid in [r.id for r in INHERENT_RISKS] + [f.id for f in found]
    )
    return Section(
        "s17",
        _("17. Measures"),
        (
            para(
                _(
                    "Technical measures the gateway enforces. Each names the tests that prove it; the test suite "
                    "fails when a named test does not exist."
                )
            ),
            table(("ID", _("Measure"), _("What it does"), _("Proved by")), measure_rows),
            para(
                _(
                    "Measures against each risk. The organisational measures are those the configuration records "
                    "(covenants and their ends, mandate decisions, oversight activities, retention rules, sources); "
                    "the parties add what it cannot know."
                )
            ),
            table(
                (_("Risk"), _("Title"), _("Level"), _("Technical measures"), _("Organisational measure")),
                against,
            ),
            para(_("Residual risk and owner per risk:")),
            *residual,
            Human(
                "residual-risk-acceptance",
                to_assess(
                    _(
                        "Whether the controllers accept the residual risks, and who decided (art. 36: prior "
                        "consultation of the Autoriteit Persoonsgegevens when a high residual risk remains)."
                    )
                ),
            ),
        ),
    )


def part_c(found: list[Finding]) -> Section:
    """Return part C of the DPIA (section 16)."""
    return Section("part-c", _("C. Risks for the data subjects"), children=(risks(found),))


def part_d(config: PolicyConfig, found: list[Finding]) -> Section:
    """Return part D of the DPIA (section 17)."""
    return Section("part-d", _("D. Measures"), children=(measures(config, found),))
