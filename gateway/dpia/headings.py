"""The DPIA's headings in Dutch, as the Model DPIA Rijksdienst names its parts and sections.

A privacy officer or jurist finds the sections under the headings of the model they know; the section
ids (the page's anchors and the human sections' keys) stay as they are.
"""

from __future__ import annotations

from dataclasses import replace

from gateway.dpia.document import Section

DUTCH_HEADINGS = {
    "intro": "Inleiding",
    "summary": "Managementsamenvatting",
    "version": "Versie en status",
    "part-a": "A. Beschrijving kenmerken gegevensverwerkingen",
    "s1": "1. Voorstel",
    "s2": "2. Persoonsgegevens",
    "s3": "3. Gegevensverwerkingen",
    "s4": "4. Techniek en methoden van de gegevensverwerkingen",
    "s5": "5. Verwerkingsdoeleinden",
    "s5a": "5a. Toezicht en nazorg",
    "s6": "6. Betrokken partijen",
    "s7": "7. Belangen bij de gegevensverwerkingen",
    "s8": "8. Verwerkingslocaties",
    "s9": "9. Juridisch en beleidsmatig kader",
    "s10": "10. Bewaartermijnen",
    "part-b": "B. Beoordeling rechtmatigheid gegevensverwerkingen",
    "s11": "11. Rechtsgrond",
    "s12": "12. Bijzondere persoonsgegevens, strafrechtelijke gegevens en nationale identificatienummers",
    "s13": "13. Doelbinding",
    "s14": "14. Noodzaak en evenredigheid",
    "s15": "15. Rechten van de betrokkene",
    "part-c": "C. Beschrijving en beoordeling van de risico's voor de betrokkenen",
    "s16": "16. Risico's",
    "s16-1": "16.1 Waar elk risico zich in de configuratie toont",
    "part-d": "D. Beschrijving voorgenomen maatregelen",
    "s17": "17. Maatregelen",
    "dpo-advice": "Advies van de functionaris gegevensbescherming",
    "adoption": "Vaststelling",
    "art35": "Bijlage: AVG art. 35 lid 7",
    "orphans": "Bijlage: tekst uit secties die niet meer bestaan",
}


def in_dutch(section: Section) -> Section:
    """Return the section, and its children, under their Dutch headings (unknown ids keep theirs)."""
    return replace(
        section,
        title=DUTCH_HEADINGS.get(section.id, section.title),
        children=tuple(in_dutch(child) for child in section.children),
    )
