"""The generated DPIA: deterministic, self-contained, and what people write in it survives regeneration."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.dpia.generate import DPIA_HTML, DPIA_MD, REGISTER_MD, VERSIONS, DocumentsError, generate, render_all, stale
from gateway.dpia.human import extract, mask
from gateway.policies.loader import load_config
from gateway.policies.model import Grant, PolicyConfig

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "lvv"
SECTIONS = [
    "Inleiding",
    "Managementsamenvatting",
    "Versie en status",
    "A. Beschrijving kenmerken gegevensverwerkingen",
    *(
        f"{n}. {title}"
        for n, title in enumerate(
            [
                "Voorstel",
                "Persoonsgegevens",
                "Gegevensverwerkingen",
                "Techniek en methoden van de gegevensverwerkingen",
                "Verwerkingsdoeleinden",
                "Betrokken partijen",
                "Belangen bij de gegevensverwerkingen",
                "Verwerkingslocaties",
                "Juridisch en beleidsmatig kader",
                "Bewaartermijnen",
                "Rechtsgrond",
                "Bijzondere persoonsgegevens, strafrechtelijke gegevens en nationale identificatienummers",
                "Doelbinding",
                "Noodzaak en evenredigheid",
                "Rechten van de betrokkene",
                "Risico's",
                "Maatregelen",
            ],
            start=1,
        )
    ),
    "B. Beoordeling rechtmatigheid gegevensverwerkingen",
    "C. Beschrijving en beoordeling van de risico's voor de betrokkenen",
    "D. Beschrijving voorgenomen maatregelen",
    "Advies van de functionaris gegevensbescherming",
    "Vaststelling",
]

WRITTEN = "The parties weighed the interests on 2025-02-01 (synthetic text written by a person)."


@pytest.fixture(scope="module")
def shipped() -> PolicyConfig:
    return load_config(CONFIG_DIR)


def write_in(path: Path, section: str, words: str) -> None:
    """Replace what a human section says, as a person editing the Markdown would."""
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(rf"(<!-- human:{section} -->\n).*?(\n<!-- /human -->)", re.DOTALL)
    assert pattern.search(text), section
    path.write_text(pattern.sub(lambda m: m.group(1) + words + m.group(2), text), encoding="utf-8")


def test_the_dpia_has_every_section_of_the_model_dpia(shipped: PolicyConfig) -> None:
    markdown = render_all(shipped, {}, None)[DPIA_MD]
    headings = [line.lstrip("#").strip() for line in markdown.splitlines() if line.startswith("#")]
    missing = [s for s in SECTIONS if s not in headings]
    assert not missing, missing


def test_the_sections_that_need_judgement_are_marked_to_be_assessed(shipped: PolicyConfig) -> None:
    human = extract(render_all(shipped, {}, None)[DPIA_MD])
    assert {"interests", "dpo-advice", "adoption", "residual-risk-acceptance", "management-conclusion"} <= set(human)
    assert all(text.startswith("**Te beoordelen.**") for text in human.values())


def test_generating_twice_gives_identical_files(shipped: PolicyConfig, tmp_path: Path) -> None:
    first = {p.name: p.read_bytes() for p in generate(shipped, tmp_path)}
    second = {p.name: p.read_bytes() for p in generate(shipped, tmp_path)}
    assert first == second


def test_human_sections_survive_regeneration(shipped: PolicyConfig, tmp_path: Path) -> None:
    generate(shipped, tmp_path)
    markdown = tmp_path / "lvv" / DPIA_MD
    write_in(markdown, "interests", WRITTEN + "\n\n- first point\n- second point")
    write_in(markdown, "dpo-advice", "Positive advice, **with conditions**.")
    assert stale(shipped, tmp_path) == [], "editing a human section must not make the documents stale"

    changed = shipped.model_copy(
        update={
            "rules": tuple(
                r.model_copy(update={"grants": (Grant(category="medical", fields="*"),)})
                if r.id == "medical-city-read"
                else r
                for r in shipped.rules
            )
        }
    )
    generate(changed, tmp_path)
    human = extract(markdown.read_text(encoding="utf-8"))
    assert human["interests"] == WRITTEN + "\n\n- first point\n- second point"
    assert human["dpo-advice"] == "Positive advice, **with conditions**."
    html = (tmp_path / "lvv" / DPIA_HTML).read_text(encoding="utf-8")
    assert WRITTEN in html
    assert "<li>second point</li>" in html
    assert "<strong>with conditions</strong>" in html


def test_text_of_a_section_that_disappeared_is_kept_in_an_appendix(shipped: PolicyConfig, tmp_path: Path) -> None:
    without_outflow = shipped.model_copy(
        update={"retention": tuple(r for r in shipped.retention if r.applies_to != "outflow")}
    )
    generate(without_outflow, tmp_path)
    markdown = tmp_path / "lvv" / DPIA_MD
    write_in(markdown, "residual-c-no-retention", "Accepted until the archivist decides (synthetic).")
    generate(shipped, tmp_path)
    text = markdown.read_text(encoding="utf-8")
    assert "## Bijlage: tekst uit secties die niet meer bestaan" in text
    assert extract(text)["residual-c-no-retention"] == "Accepted until the archivist decides (synthetic)."


def test_broken_human_markers_are_refused_rather_than_losing_text(shipped: PolicyConfig, tmp_path: Path) -> None:
    generate(shipped, tmp_path)
    markdown = tmp_path / "lvv" / DPIA_MD
    markdown.write_text(markdown.read_text(encoding="utf-8").replace("<!-- /human -->", "", 1), encoding="utf-8")
    with pytest.raises(DocumentsError, match="markers"):
        generate(shipped, tmp_path)


def test_the_html_is_self_contained(shipped: PolicyConfig) -> None:
    html = render_all(shipped, {}, None)[DPIA_HTML]
    assert "<script" not in html
    assert not re.search(r"""(src|href)=["'](?!#)""", html), "no external or relative assets"
    assert "@import" not in html
    assert "url(" not in html


def test_the_html_carries_the_same_human_sections_as_the_markdown(shipped: PolicyConfig) -> None:
    files = render_all(shipped, {"interests": WRITTEN}, None)
    assert set(extract(files[DPIA_HTML])) == set(extract(files[DPIA_MD]))
    assert mask(files[DPIA_HTML]).count("<!-- human:") == len(extract(files[DPIA_MD]))


def test_the_document_version_comes_from_the_policy_not_the_clock(shipped: PolicyConfig) -> None:
    markdown = render_all(shipped, {}, None)[DPIA_MD]
    assert "Documentversie | `sha256:" in markdown
    assert not re.search(r"(generated|gegenereerd) (on|at|op|om) \d{4}", markdown, re.IGNORECASE)


def test_an_untouched_section_that_disappeared_is_dropped(shipped: PolicyConfig, tmp_path: Path) -> None:
    without_outflow = shipped.model_copy(
        update={"retention": tuple(r for r in shipped.retention if r.applies_to != "outflow")}
    )
    generate(without_outflow, tmp_path)
    generate(shipped, tmp_path)
    text = (tmp_path / "lvv" / DPIA_MD).read_text(encoding="utf-8")
    assert "residual-c-no-retention" not in text
    assert "Bijlage: tekst uit secties" not in text


def test_the_documents_of_record_speak_dutch(shipped: PolicyConfig) -> None:
    files = render_all(shipped, {}, None)
    dpia, register = files[DPIA_MD], files[REGISTER_MD]
    assert "Deze gegevensbeschermingseffectbeoordeling (DPIA, AVG art. 35) volgt de opbouw van het Model DPIA" in dpia
    assert "| Risico | Titel | Niveau | Technische maatregelen | Organisatorische maatregel |" in dpia
    assert "Advies van de functionaris gegevensbescherming" in dpia
    assert "Art. 30 lid 1 sub a: de naam en de contactgegevens van de verwerkingsverantwoordelijke" in register
    assert "Gezamenlijke verwerkingsverantwoordelijken: Gemeente Amsterdam (lvv-amsterdam)" in register
    for english in ("To be assessed", "This data protection impact assessment", "Joint controllers", "(a) name and"):
        assert english not in dpia + register, english
    assert '<html lang="nl">' in files[DPIA_HTML]


def test_an_english_rendition_is_written_beside_the_dutch_documents_on_request(
    shipped: PolicyConfig, tmp_path: Path
) -> None:
    generate(shipped, tmp_path)
    write_in(tmp_path / "lvv" / DPIA_MD, "interests", WRITTEN)
    written = {p.name for p in generate(shipped, tmp_path, "en")}
    assert written == {"dpia.en.md", "dpia.en.html", "register.en.md", "register.en.json"}
    english = (tmp_path / "lvv" / "dpia.en.md").read_text(encoding="utf-8")
    assert "### 1. The proposal" in english
    assert "**To be assessed.** Who adopted this DPIA" in english
    assert extract(english)["interests"] == WRITTEN, "the rendition carries what people wrote in the Dutch DPIA"
    assert "### 1. Voorstel" in (tmp_path / "lvv" / DPIA_MD).read_text(encoding="utf-8")
    assert "Registering a person who reports to the local LVV" in english, "the configuration's English texts"
    assert "Registreren van een persoon die zich bij de lokale LVV meldt" in (tmp_path / "lvv" / DPIA_MD).read_text(
        encoding="utf-8"
    )
    assert VERSIONS not in written
    assert stale(shipped, tmp_path) == []
    (tmp_path / "lvv" / "dpia.en.md").write_text(english.replace("The proposal", "A proposal"), encoding="utf-8")
    assert stale(shipped, tmp_path) == [f"{tmp_path / 'lvv' / 'dpia.en.md'} is stale"], "a rendition is checked too"


def test_placeholders_of_an_earlier_english_document_give_way_to_the_dutch_ones(
    shipped: PolicyConfig, tmp_path: Path
) -> None:
    generate(shipped, tmp_path)
    markdown = tmp_path / "lvv" / DPIA_MD
    write_in(markdown, "adoption", "**To be assessed.** Who adopted this DPIA, on which date, and what they decided.")
    write_in(markdown, "interests", WRITTEN)
    generate(shipped, tmp_path)
    human = extract(markdown.read_text(encoding="utf-8"))
    assert human["adoption"].startswith("**Te beoordelen.** Wie deze DPIA heeft vastgesteld")
    assert human["interests"] == WRITTEN
