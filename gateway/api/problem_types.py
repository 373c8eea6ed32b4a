"""The problem types the API answers with, each explained on its own page (`/problems/{code}`).

A problem's `type` is the absolute address of that page under the gateway (RFC 9457 section 3.1.1:
a URI that, dereferenced, documents the problem for humans). The pages are Dutch first, with English
below: the partners' developers and the officers who read them are Dutch.

`CATALOGUE` holds every code the API sends; `tests/unit/test_problem_types.py` finds the codes in the
source and fails on one that is missing here.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from gateway.policies.decision import REASON_TEXT, Reason

PATH = "/problems"


@dataclass(frozen=True)
class ProblemType:
    status: int
    nl: str  # Dutch explanation: what happened, what to do
    en: str  # English explanation


_NOT_FOUND_NL = "Niet gevonden, of niet zichtbaar voor uw organisatie voor dit doel."
_DENIED_NL = "Toegang geweigerd; de weigering staat in het auditlog (zie audit_seq)."

# Dutch sentences for the decision's reasons; the English ones are the decision's own texts.
_REASON_NL: dict[Reason, str] = {
    Reason.PERMITTED: "Een deelregel die nu geldt staat dit verzoek toe.",
    Reason.UNKNOWN_PURPOSE: "Het opgegeven doel is geen verwerkingsactiviteit van deze gateway. "
    "Het antwoord noemt de geldige doelen.",
    Reason.UNKNOWN_ORGANISATION: "De organisatie is niet bekend bij deze gateway.",
    Reason.ROLE_NOT_ALLOWED: "De handelende rol is geen rol van deze organisatie.",
    Reason.AGGREGATE_PURPOSE: "Dit doel dient alleen geaggregeerde cijfers, nooit het dossier van een persoon.",
    Reason.NO_COVENANT_IN_FORCE: "Er is op dit moment geen convenant van kracht waarin de organisatie partij is.",
    Reason.OUTSIDE_COVENANT_REGION: "De deelnemer valt niet in een regio van een convenant dat van kracht is.",
    Reason.OUTSIDE_RECIPIENT_REGION: "De deelnemer valt niet in een regio van de organisatie.",
    Reason.NO_RULE: "Geen deelregel staat deze organisatie en rol deze handeling voor dit doel toe.",
    Reason.CATEGORY_NOT_PERMITTED: "Geen van de gevraagde categorieën is voor dit doel toegestaan.",
    Reason.NOT_SOURCE: "De organisatie is niet de bron van deze categorie en mag haar niet schrijven.",
    Reason.FIELD_NOT_PERMITTED: "Een te schrijven veld is voor deze organisatie en dit doel niet toegestaan.",
    Reason.UNDER_LEGAL_HOLD: "Voor de deelnemer geldt een juridische bewaarplicht: alleen toegang voor de procedure.",
    Reason.NO_MANDATE_IN_FORCE: "Het mandaat dat de passende regel draagt is op dit moment niet van kracht.",
    Reason.NO_OVERSIGHT_ACTIVITY: "Geen toezichtactiviteit staat deze organisatie en rol deze handeling toe.",
    Reason.AFTERCARE_ENDED: "De convenanten zijn geëindigd en ook de nazorgperiode van deze toezichtactiviteit.",
    Reason.NOT_A_PARTY: "De organisatie is geen partij bij dit convenant.",
}

CATALOGUE: dict[str, ProblemType] = {
    reason.value: ProblemType(403, _REASON_NL[reason], text)
    for reason, text in REASON_TEXT.items()
    if reason is not Reason.PERMITTED
}
CATALOGUE[Reason.UNKNOWN_PURPOSE.value] = ProblemType(
    400, _REASON_NL[Reason.UNKNOWN_PURPOSE], REASON_TEXT[Reason.UNKNOWN_PURPOSE] + " The answer lists the valid ones."
)
CATALOGUE.update(
    {
        "purpose_missing": ProblemType(
            400,
            "De header Processing-Purpose ontbreekt. Elk verzoek noemt zijn doel; het antwoord noemt de geldige.",
            "The Processing-Purpose header is missing. Every request states its purpose; the answer lists them.",
        ),
        "acting_user_missing": ProblemType(
            400,
            "De header Acting-User ontbreekt of is ongeldig (1-128 tekens: letters, cijfers, . _ @ : + -).",
            "The Acting-User header is missing or malformed (1-128 of letters, digits, . _ @ : + -).",
        ),
        "acting_role_missing": ProblemType(
            400,
            "De header Acting-Role ontbreekt of is ongeldig (kleine letters, cijfers, _ . -).",
            "The Acting-Role header is missing or malformed (lowercase letters, digits, _ . -).",
        ),
        "invalid_token": ProblemType(
            401,
            "Geen geldig toegangstoken. Vraag een token aan bij /oauth/token (client credentials, "
            "private_key_jwt). Een token buiten zijn geldigheid noemt de klok die het weigerde en haar stand.",
            "No valid access token. Get one from /oauth/token (client credentials, private_key_jwt). A token "
            "outside its validity names the clock that refused it and its reading.",
        ),
        "insufficient_scope": ProblemType(
            403,
            "Het token geeft deze rol niet: vraag een token aan waarvan de scope de Acting-Role bevat.",
            "The token does not grant this role: request a token whose scope includes the Acting-Role.",
        ),
        "not_found": ProblemType(404, _NOT_FOUND_NL, "Not found, or not visible to your organisation."),
        "unknown_participant": ProblemType(404, _NOT_FOUND_NL, "No such participant (answered as not_found)."),
        "no_checkpoint": ProblemType(
            404, "Er is (bij deze grootte) nog geen checkpoint getekend.", "No checkpoint signed (at that size) yet."
        ),
        "method_not_allowed": ProblemType(
            405, "Deze methode is niet toegestaan op dit adres.", "This method is not allowed on this path."
        ),
        "bad_sizes": ProblemType(400, "first mag niet groter zijn dan second.", "first must not exceed second."),
        "not_in_tree": ProblemType(
            400, "De entry valt niet in de boom van deze grootte.", "The entry is not in the tree of that size."
        ),
        "beyond_checkpoint": ProblemType(
            400,
            "De gevraagde grootte ligt voorbij het laatst getekende checkpoint.",
            "The size asked for lies beyond the latest signed checkpoint.",
        ),
        "log_incomplete": ProblemType(
            409, "Het auditlog is (nog) niet compleet tot deze grootte.", "The audit log is not complete to that size."
        ),
        "clock_backwards": ProblemType(
            409, "De gesimuleerde klok kan niet terug.", "The rehearsal's simulated clock cannot go back."
        ),
        "data_destroyed": ProblemType(
            409,
            "De gegevens van deze categorie zijn volgens de bewaartermijn vernietigd.",
            "This category's data has been destroyed under its retention rule.",
        ),
        "evidence_unavailable": ProblemType(
            409, "Het document kan nu niet worden uitgegeven.", "The document cannot be issued now."
        ),
        "body_too_large": ProblemType(
            413,
            "De body van het verzoek is te groot (GATEWAY_MAX_REQUEST_BODY_BYTES).",
            "The request body is too large (GATEWAY_MAX_REQUEST_BODY_BYTES).",
        ),
        "unsupported_media_type": ProblemType(
            415, "Stuur de body als application/json.", "Send the body as application/json."
        ),
        "invalid_request": ProblemType(
            422,
            "Het verzoek klopt niet met het schema van deze operatie; errors[].location noemt het veld.",
            "The request does not match this operation's schema; errors[].location names the field.",
        ),
        "unknown_category": ProblemType(422, "Geen gegevenscategorie.", "Not a data category."),
        "unknown_field": ProblemType(422, "De categorie kent dit veld niet.", "The category has no such field."),
        "no_records": ProblemType(
            422, "Een registratie bevat minstens één categorie.", "A registration holds at least one category."
        ),
        "no_fields": ProblemType(422, "Een schrijfactie bevat minstens één veld.", "A write holds at least one field."),
        "unstorable_value": ProblemType(
            422,
            "Een veld bevat een waarde die niet kan worden opgeslagen.",
            "A field holds a value that cannot be stored.",
        ),
        "invalid_reference": ProblemType(
            422, "De referentie is niet aanvaardbaar.", "The reference is not acceptable."
        ),
        "naive_moment": ProblemType(
            422, "Geef het moment met zijn tijdzone-offset.", "Give the moment with its time zone offset."
        ),
        "naive_time": ProblemType(
            422,
            "Tijden hebben een offset nodig, bijv. 2024-11-01T00:00:00+01:00.",
            "Times need a zone offset, e.g. 2024-11-01T00:00:00+01:00.",
        ),
        "rate_limited": ProblemType(
            429,
            "Te veel verzoeken van deze client; wacht het aantal seconden in Retry-After.",
            "Too many requests for this client; wait the seconds in Retry-After.",
        ),
        "internal_error": ProblemType(
            500,
            "Interne fout. Er is niets vrijgegeven; meld de trace_id aan de beheerder.",
            "Internal error. Nothing was released; give the trace_id to the operator.",
        ),
        "record_integrity": ProblemType(
            500,
            "Een opgeslagen dossier doorstond zijn integriteitscontrole niet; er is niets vrijgegeven.",
            "A stored record failed its integrity check; nothing was released.",
        ),
        "audit_unavailable": ProblemType(
            503,
            "Het auditlog kan dit verzoek niet vastleggen, dus is er niets vrijgegeven. "
            "Probeer het later (Retry-After).",
            "The audit log cannot record this request, so nothing was released. Retry later (Retry-After).",
        ),
        "storage_unavailable": ProblemType(
            503,
            "De database van de gateway is niet bereikbaar; er is niets vrijgegeven. Probeer het later (Retry-After).",
            "The gateway's database is unavailable; nothing was released. Retry later (Retry-After).",
        ),
        "not_ready": ProblemType(
            503,
            "De gateway is (nog) niet klaar: database, auditschrijver of sealer. /ready noemt welke.",
            "The gateway is not ready: database, audit writer or sealer. /ready says which.",
        ),
        "http_error": ProblemType(400, "Het verzoek kon niet worden verwerkt.", "The request could not be handled."),
        "identifiers_missing": ProblemType(
            422,
            "Te weinig om een deelnemer te vinden: geef het V-nummer, of de achternaam samen met de geboortedatum.",
            "Not enough to find a participant: give the V-number, or the family name together with the birth date.",
        ),
        "lookup_unavailable": ProblemType(
            503,
            "Deelnemers zoeken is niet ingericht: de sleutel voor de zoekindex ontbreekt. Vraag de beheerder.",
            "Finding a participant is not set up: the key of the lookup index is missing. Ask the operator.",
        ),
        "monitor_not_configured": ProblemType(
            404,
            "Deze configuratie heeft geen monitor (monitor.yaml ontbreekt).",
            "This configuration has no monitor (monitor.yaml is missing).",
        ),
    }
)


def problem_base(request: Request) -> str:
    """Return the absolute address of the problem pages, as the caller reached the gateway."""
    return str(request.base_url).rstrip("/") + PATH


def default_detail(code: str) -> str | None:
    """Return the English explanation of a code (a problem's `detail` when its raiser gave none)."""
    known = CATALOGUE.get(code)
    return known.en if known else None


_PAGE = """<!doctype html>
<html lang="nl"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}}
code{{background:#f3f3f3;padding:0 .2em}} table{{border-collapse:collapse}}
td,th{{border-bottom:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}}</style>
</head><body>{body}</body></html>"""


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=escape(title), body=body))


router = APIRouter(prefix=PATH, include_in_schema=False)


@router.get("")
def problem_index(request: Request) -> HTMLResponse:
    """The list of problem types."""
    rows = "".join(
        f'<tr><td><a href="{PATH}/{escape(code)}"><code>{escape(code)}</code></a></td><td>{p.status}</td>'
        f'<td>{escape(p.nl)}</td><td lang="en">{escape(p.en)}</td></tr>'
        for code, p in sorted(CATALOGUE.items(), key=lambda item: (item[1].status, item[0]))
    )
    return _page(
        "Probleemtypen / problem types",
        "<h1>Probleemtypen van de gateway</h1><p>Elke foutmelding is <code>application/problem+json</code> "
        "(RFC 9457); haar <code>type</code> verwijst naar een van deze pagina's.</p>"
        '<p lang="en"><i>Problem types: every error is application/problem+json; its type points here.</i></p>'
        f"<table><tr><th>code</th><th>status</th><th>Nederlands</th><th>English</th></tr>{rows}</table>",
    )


@router.get("/{code}")
def problem_page(request: Request, code: str) -> HTMLResponse:
    """One problem type explained, Dutch first, then English."""
    from gateway.api.problems import Problem

    known = CATALOGUE.get(code)
    if known is None:
        raise Problem(404, "not_found", "No such problem type.", f"The problem types are listed at {PATH}.")
    type_uri = f"{problem_base(request)}/{code}"
    return _page(
        f"{code} ({known.status})",
        f"<h1><code>{escape(code)}</code> &middot; HTTP {known.status}</h1>"
        f"<p>{escape(known.nl)}</p>"
        f'<h2 lang="en">English</h2><p lang="en">{escape(known.en)}</p>'
        "<h2>In het antwoord / in the response</h2>"
        f"<p><code>type</code>: <code>{escape(type_uri)}</code>; <code>code</code>: <code>{escape(code)}</code>; "
        "<code>instance</code>: urn:lvv-gateway:trace:{trace_id}; <code>trace_id</code>: "
        "koppelt aan het auditlog / links to the audit log.</p>"
        f'<p><a href="{PATH}">Alle probleemtypen / all problem types</a></p>',
    )
