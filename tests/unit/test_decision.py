"""The policy decision point as a truth table and as properties that hold for every request.

The policy is built here from the config models (not from `config/lvv`), small enough to reason about:
two regions, a gemeente, a rijkspartner and an NGO; a pilot covenant that ends on 2024-12-31 at
23:59:59 (Amsterdam) and a local successor from 2025-01-01 with fewer parties; purposes for casework,
return (with an art. 10 basis) and monitoring (aggregates only).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.policies.compiled import CompiledPolicy, compile_policy
from gateway.policies.decision import AccessRequest, Decision, Reason, decide
from gateway.policies.loader import cross_check, policy_version
from gateway.policies.model import CategoryField as F
from gateway.policies.model import (
    ConfigMeta,
    Covenant,
    CovenantParty,
    DataCategory,
    GdprRole,
    Grant,
    LegalBasis,
    Operation,
    Organisation,
    OrganisationKind,
    PolicyConfig,
    Purpose,
    Recipient,
    SharingRule,
)
from gateway.policies.model import Sensitivity as S

AMS = ZoneInfo("Europe/Amsterdam")
READ, WRITE, LIST, REGISTER = Operation.READ, Operation.WRITE, Operation.LIST, Operation.REGISTER
WRITES = (WRITE, REGISTER)
GEMEENTE, RIJK, NGO = OrganisationKind.GEMEENTE, OrganisationKind.RIJKSPARTNER, OrganisationKind.NGO


def at(*parts: int) -> float:
    """Return the POSIX time of a wall-clock moment in Amsterdam."""
    return datetime(*parts, tzinfo=AMS).timestamp()


def basis(dpv: str) -> LegalBasis:
    """Return a legal basis with a placeholder text."""
    return LegalBasis(dpv=dpv, text=f"Synthetic test basis for {dpv}")


# --- the fixture policy -----------------------------------------------------------------------------

ORGANISATIONS = (
    Organisation(
        id="gem-utrecht",
        name="Gemeente Utrecht (test)",
        kind=GEMEENTE,
        oin="00000001000000000001",
        regions=("utrecht",),
        roles=("casemanager", "monitor_analyst"),
    ),
    Organisation(
        id="ind",
        name="IND (test)",
        kind=RIJK,
        oin="00000001000000000002",
        regions=("utrecht", "groningen"),
        roles=("ind_officer",),
    ),
    Organisation(
        id="ngo-utrecht",
        name="Stichting Test (NGO)",
        kind=NGO,
        oin="00000001000000000003",
        regions=("utrecht",),
        roles=("counsellor",),
    ),
)
COVENANTS = (
    Covenant(
        id="lvv-pilot",
        title="LVV pilot covenant (test)",
        regions=("utrecht", "groningen"),
        parties=(
            CovenantParty(organisation="gem-utrecht", gdpr_role=GdprRole.JOINT_CONTROLLER),
            CovenantParty(organisation="ind", gdpr_role=GdprRole.JOINT_CONTROLLER),
            CovenantParty(organisation="ngo-utrecht", gdpr_role=GdprRole.PROCESSOR),
        ),
        valid_from=datetime(2019, 4, 1),
        valid_until=datetime(2024, 12, 31, 23, 59, 59),
    ),
    Covenant(
        id="utrecht-continued",
        title="Utrecht continues locally (test)",
        regions=("utrecht",),
        parties=(
            CovenantParty(organisation="gem-utrecht", gdpr_role=GdprRole.CONTROLLER),
            CovenantParty(organisation="ngo-utrecht", gdpr_role=GdprRole.PROCESSOR),
        ),
        valid_from=datetime(2025, 1, 1),
        valid_until=datetime(2026, 12, 31, 23, 59, 59),
    ),
)
PURPOSES = (
    Purpose(
        id="casework",
        name="Casework",
        description="Guidance towards a durable solution",
        processing_activity_id="urn:test:register:casework",
        dpv_purpose="dpv:ServiceProvision",
        legal_basis=basis("eu-gdpr:A6-1-e"),
    ),
    Purpose(
        id="return",
        name="Return",
        description="Preparing departure",
        dpv_purpose="dpv:LegalCompliance",
        processing_activity_id="urn:test:register:return",
        legal_basis=basis("eu-gdpr:A6-1-c"),
        art10_condition=basis("eu-gdpr:A10"),
    ),
    Purpose(
        id="monitoring",
        name="Monitoring",
        description="Counts per region",
        aggregate_only=True,
        processing_activity_id="urn:test:register:monitoring",
        dpv_purpose="dpv:ServiceOptimisation",
        legal_basis=basis("eu-gdpr:A6-1-e"),
    ),
)
CATEGORIES = (
    DataCategory(
        id="identity",
        name="Identity",
        dpv_category="dpv:Identifying",
        sensitivity=S.ORDINARY,
        fields=(F(name="v_number", sensitivity=S.NATIONAL_ID), F(name="family_name"), F(name="birth_year")),
        sources=("rijkspartner",),
    ),
    DataCategory(
        id="situation",
        name="Situation",
        dpv_category="dpv:Social",
        sensitivity=S.ORDINARY,
        fields=(F(name="housing"), F(name="income_status"), F(name="notes")),
        sources=("gemeente",),
    ),
    DataCategory(
        id="procedure",
        name="Procedure",
        dpv_category="dpv:Legal",
        sensitivity=S.ORDINARY,
        fields=(F(name="stage"), F(name="decision_date")),
        sources=("ind",),
    ),
    DataCategory(
        id="criminal_record",
        name="Criminal record",
        dpv_category="dpv:Criminal",
        sensitivity=S.CRIMINAL,
        fields=(F(name="conviction_summary"), F(name="public_order_flag")),
        sources=("ind",),
    ),
)
BOTH = ("lvv-pilot", "utrecht-continued")
RULES = (
    SharingRule(
        id="casework-read-gemeente",
        description="Gemeente reads for casework",
        purpose="casework",
        covenants=BOTH,
        operations=(READ, LIST),
        condition="same_region",
        recipient=Recipient(kinds=(GEMEENTE,), roles=("casemanager",)),
        grants=(
            Grant(category="identity", fields="*"),
            Grant(category="situation", fields="*"),
            Grant(category="procedure", fields=("stage",)),
        ),
        legal_basis=basis("eu-gdpr:A6-1-e"),
    ),
    SharingRule(
        id="casework-read-ngo",
        description="NGO reads housing",
        purpose="casework",
        covenants=BOTH,
        operations=(READ,),
        condition="same_region",
        recipient=Recipient(organisations=("ngo-utrecht",), roles=("counsellor",)),
        grants=(Grant(category="situation", fields=("housing",)),),
        legal_basis=basis("eu-gdpr:A6-1-e"),
    ),
    SharingRule(
        id="casework-write",
        description="Casework partners write the situation",
        purpose="casework",
        covenants=BOTH,
        operations=(WRITE,),
        condition="same_region",
        recipient=Recipient(kinds=(GEMEENTE, NGO), roles=("casemanager", "counsellor")),
        grants=(Grant(category="situation", fields="*"),),
        legal_basis=basis("eu-gdpr:A6-1-e"),
    ),
    SharingRule(
        id="return-read-ind",
        description="IND reads for return",
        purpose="return",
        covenants=("lvv-pilot",),
        operations=(READ, LIST),
        condition="covenant_region",
        recipient=Recipient(kinds=(RIJK,), roles=("ind_officer",)),
        grants=(
            Grant(category="identity", fields=("v_number", "family_name")),
            Grant(category="procedure", fields="*"),
            Grant(category="criminal_record", fields="*"),
        ),
        legal_basis=basis("nl-vw2000:art.107"),
    ),
    SharingRule(
        id="casework-read-ind",
        description="IND reads the procedure for casework",
        purpose="casework",
        covenants=BOTH,
        operations=(READ,),
        condition="covenant_region",
        recipient=Recipient(kinds=(RIJK,), roles=("ind_officer",)),
        grants=(Grant(category="procedure", fields="*"),),
        legal_basis=basis("eu-gdpr:A6-1-e"),
    ),
    SharingRule(
        id="return-read-gemeente",
        description="Gemeente reads the stage",
        purpose="return",
        covenants=BOTH,
        operations=(READ,),
        condition="same_region",
        recipient=Recipient(kinds=(GEMEENTE,), roles=("casemanager",)),
        grants=(Grant(category="procedure", fields=("stage",)),),
        legal_basis=basis("eu-gdpr:A6-1-c"),
    ),
    SharingRule(
        id="monitoring-list",
        description="Counts for the gemeente",
        purpose="monitoring",
        covenants=BOTH,
        operations=(LIST,),
        condition="covenant_region",
        recipient=Recipient(kinds=(GEMEENTE,), roles=("monitor_analyst",)),
        legal_basis=basis("eu-gdpr:A6-1-e"),
    ),
)
# Further valid rules, only drawn into the random policies of the deny-by-default properties.
EXTRA_RULES = (
    SharingRule(
        id="casework-identity-ngo",
        description="NGO reads identity",
        purpose="casework",
        covenants=BOTH,
        operations=(READ, LIST),
        condition="covenant_region",
        recipient=Recipient(kinds=(NGO,), roles=("counsellor",)),
        grants=(Grant(category="identity", fields="*"),),
        legal_basis=basis("eu-gdpr:A6-1-e"),
    ),
    SharingRule(
        id="casework-vnumber-gemeente",
        description="Gemeente reads the V-number",
        purpose="casework",
        covenants=("lvv-pilot",),
        operations=(READ,),
        condition="covenant_region",
        recipient=Recipient(organisations=("gem-utrecht",), roles=("casemanager",)),
        grants=(Grant(category="identity", fields=("v_number",)),),
        legal_basis=basis("eu-gdpr:A6-1-c"),
    ),
    SharingRule(
        id="return-write-ind",
        description="IND writes the procedure",
        purpose="return",
        covenants=("lvv-pilot",),
        operations=(WRITE,),
        condition="covenant_region",
        recipient=Recipient(kinds=(RIJK,), roles=("ind_officer",)),
        grants=(Grant(category="procedure", fields="*"), Grant(category="identity", fields="*")),
        legal_basis=basis("nl-vw2000:art.107"),
    ),
    SharingRule(
        id="return-criminal-gemeente",
        description="Gemeente sees the public-order flag",
        purpose="return",
        covenants=BOTH,
        operations=(READ, LIST),
        condition="same_region",
        recipient=Recipient(kinds=(GEMEENTE,), roles=("casemanager",)),
        grants=(Grant(category="criminal_record", fields=("public_order_flag",)),),
        legal_basis=basis("eu-gdpr:A10"),
    ),
    SharingRule(
        id="casework-register-gemeente",
        description="Gemeente registers a participant",
        purpose="casework",
        covenants=BOTH,
        operations=(REGISTER,),
        condition="same_region",
        recipient=Recipient(organisations=("gem-utrecht",), roles=("casemanager",)),
        grants=(Grant(category="situation", fields="*"),),
        legal_basis=basis("eu-gdpr:A6-1-e"),
    ),
)
POOL = RULES + EXTRA_RULES
WRITE_RULES = [r for r in POOL if set(WRITES) & set(r.operations)]


def make_config(rules: tuple[SharingRule, ...] = RULES) -> PolicyConfig:
    """Return the fixture configuration with the given sharing rules."""
    meta = ConfigMeta(
        name="decision-test",
        title="Decision test policy",
        status="test",
        disclaimer="Synthetic, for tests only",
        controller_contact="privacy@example.test",
    )
    return PolicyConfig(
        meta=meta,
        organisations=ORGANISATIONS,
        covenants=COVENANTS,
        purposes=PURPOSES,
        categories=CATEGORIES,
        rules=rules,
    )


CONFIG = make_config()
POLICY = compile_policy(CONFIG)
EMPTY_POLICY = compile_policy(make_config(()))

PILOT = at(2023, 6, 15, 12, 0)  # the pilot covenant is in force
LOCAL = at(2025, 6, 15, 12, 0)  # only the successor is in force
PILOT_LAST_SECOND = at(2024, 12, 31, 23, 59, 59)
PILOT_LAST_MICROSECOND = datetime(2024, 12, 31, 23, 59, 59, 999_999, tzinfo=AMS).timestamp()
NEW_YEAR = at(2025, 1, 1, 0, 0, 0)


def request(
    org: str,
    role: str,
    purpose: str,
    op: Operation = READ,
    region: str | None = "utrecht",
    categories: tuple[str, ...] | None = None,
    fields: tuple[tuple[str, str], ...] | None = None,
) -> AccessRequest:
    """Return an access request."""
    return AccessRequest(
        organisation=org,
        role=role,
        purpose=purpose,
        operation=op,
        participant_region=region,
        categories=categories,
        fields=fields,
    )


GEM = ("gem-utrecht", "casemanager")
IND = ("ind", "ind_officer")
NGO_ = ("ngo-utrecht", "counsellor")


def test_the_fixture_policy_passes_the_loaders_cross_check() -> None:
    assert cross_check(CONFIG) == []
    assert POLICY.version == policy_version(CONFIG)


def test_every_rule_of_the_random_policy_pool_passes_the_cross_check() -> None:
    assert cross_check(make_config(POOL)) == []


# --- truth table ------------------------------------------------------------------------------------


class Row(NamedTuple):
    request: AccessRequest
    when: float
    permitted: bool
    reason: Reason
    fields: dict[str, tuple[str, ...]] | None = None
    withheld: tuple[str, ...] = ()
    hides_existence: bool = False
    visible_regions: frozenset[str] | None = None
    covenants: tuple[str, ...] | None = None


P, D = True, False
TRUTH_TABLE = [
    pytest.param(
        Row(
            request(*GEM, "casework"),
            PILOT,
            P,
            Reason.PERMITTED,
            fields={
                "identity": ("family_name", "birth_year"),
                "situation": ("housing", "income_status", "notes"),
                "procedure": ("stage",),
            },
        ),
        id="gemeente reads its own participant for casework with exactly the granted fields",
    ),
    pytest.param(Row(request(*GEM, "fishing"), PILOT, D, Reason.UNKNOWN_PURPOSE), id="an unknown purpose is refused"),
    pytest.param(
        Row(request("gem-elsewhere", "casemanager", "casework"), PILOT, D, Reason.UNKNOWN_ORGANISATION),
        id="an unknown organisation is refused",
    ),
    pytest.param(
        Row(request("gem-utrecht", "ind_officer", "casework"), PILOT, D, Reason.ROLE_NOT_ALLOWED),
        id="a role that is not the organisation's is refused",
    ),
    pytest.param(
        Row(request("gem-utrecht", "monitor_analyst", "casework"), PILOT, D, Reason.NO_RULE),
        id="a role of the organisation that no rule names is refused",
    ),
    pytest.param(
        Row(
            request("gem-utrecht", "monitor_analyst", "monitoring", LIST, None),
            PILOT,
            D,
            Reason.AGGREGATE_PURPOSE,
        ),
        id="an aggregate-only purpose never serves records",
    ),
    pytest.param(
        Row(request("gem-utrecht", "monitor_analyst", "monitoring"), PILOT, D, Reason.AGGREGATE_PURPOSE),
        id="an aggregate-only purpose refuses a record in the covenant's regions",
    ),
    pytest.param(
        Row(
            request("gem-utrecht", "monitor_analyst", "monitoring", region="limburg"),
            PILOT,
            D,
            Reason.OUTSIDE_COVENANT_REGION,
            hides_existence=True,
        ),
        id="an aggregate-only purpose hides a participant outside the covenant's regions like any purpose",
    ),
    pytest.param(
        # Changed with issue 10: was purpose_is_aggregate_only (also 403); the covenant is now checked first.
        Row(
            request("gem-utrecht", "monitor_analyst", "monitoring", LIST, None),
            at(2019, 3, 31, 23, 59, 59),
            D,
            Reason.NO_COVENANT_IN_FORCE,
        ),
        id="an aggregate-only purpose without a covenant in force is refused for the covenant",
    ),
    pytest.param(
        Row(request(*GEM, "casework"), at(2019, 3, 31, 23, 59, 59), D, Reason.NO_COVENANT_IN_FORCE),
        id="nothing is served before the covenant starts",
    ),
    pytest.param(
        Row(request(*GEM, "casework"), at(2019, 4, 1, 0, 0, 0), P, Reason.PERMITTED, covenants=("lvv-pilot",)),
        id="the covenant serves from its first second",
    ),
    pytest.param(
        Row(request(*GEM, "casework"), at(2027, 1, 1, 0, 0, 0), D, Reason.NO_COVENANT_IN_FORCE),
        id="nothing is served after every covenant has ended",
    ),
    pytest.param(
        Row(request(*IND, "return"), PILOT_LAST_SECOND, P, Reason.PERMITTED, covenants=("lvv-pilot",)),
        id="the covenant still serves in its last second",
    ),
    pytest.param(
        Row(request(*IND, "return"), PILOT_LAST_MICROSECOND, P, Reason.PERMITTED),
        id="the covenant still serves in the last microsecond of its last second",
    ),
    pytest.param(
        Row(request(*IND, "return"), NEW_YEAR, D, Reason.NO_COVENANT_IN_FORCE),
        id="the covenant stops serving at its end, to the second",
    ),
    pytest.param(
        Row(request(*GEM, "casework"), NEW_YEAR, P, Reason.PERMITTED, covenants=("utrecht-continued",)),
        id="the successor covenant serves its party from its first second",
    ),
    pytest.param(
        Row(request(*IND, "return"), LOCAL, D, Reason.NO_COVENANT_IN_FORCE),
        id="a party left out of the successor covenant is refused after the pilot ends",
    ),
    pytest.param(
        Row(request(*IND, "casework"), LOCAL, D, Reason.NO_COVENANT_IN_FORCE),
        id="a rule naming the successor covenant does not serve an organisation not party to it",
    ),
    pytest.param(
        Row(
            request(*GEM, "casework", region="groningen"),
            LOCAL,
            D,
            Reason.OUTSIDE_COVENANT_REGION,
            hides_existence=True,
        ),
        id="a participant outside the covenant's regions is hidden",
    ),
    pytest.param(
        Row(
            request(*IND, "return", region="limburg"),
            PILOT,
            D,
            Reason.OUTSIDE_COVENANT_REGION,
            hides_existence=True,
        ),
        id="a participant in an unknown region is hidden",
    ),
    pytest.param(
        Row(
            request(*GEM, "casework", region="groningen"),
            PILOT,
            D,
            Reason.OUTSIDE_RECIPIENT_REGION,
            hides_existence=True,
        ),
        id="a same-region rule hides participants outside the recipient's regions",
    ),
    pytest.param(
        Row(request(*IND, "return", region="groningen"), PILOT, P, Reason.PERMITTED),
        id="a covenant-region rule serves every region of the covenant",
    ),
    pytest.param(
        Row(request(*GEM, "return"), PILOT, P, Reason.PERMITTED, fields={"procedure": ("stage",)}),
        id="the return purpose is permitted to a gemeente",
    ),
    pytest.param(Row(request(*NGO_, "return"), PILOT, D, Reason.NO_RULE), id="the return purpose is refused to an NGO"),
    pytest.param(
        Row(
            request(*NGO_, "casework", categories=("situation", "identity")),
            PILOT,
            P,
            Reason.PERMITTED,
            fields={"situation": ("housing",)},
            withheld=("identity",),
        ),
        id="a partly permitted request is served with the rest withheld",
    ),
    pytest.param(
        Row(
            request(*NGO_, "casework", categories=("criminal_record",)),
            PILOT,
            D,
            Reason.CATEGORY_NOT_PERMITTED,
            withheld=("criminal_record",),
        ),
        id="a request for categories none of which are permitted is refused",
    ),
    pytest.param(
        Row(request(*NGO_, "casework", WRITE, categories=("situation",)), PILOT, D, Reason.NOT_SOURCE),
        id="a write by an organisation that is not the source is refused",
    ),
    pytest.param(
        Row(
            request(*GEM, "casework", WRITE, categories=("situation",)),
            PILOT,
            P,
            Reason.PERMITTED,
            fields={"situation": ("housing", "income_status", "notes")},
        ),
        id="a write by the source is permitted",
    ),
    pytest.param(
        Row(
            request(*GEM, "casework", WRITE, categories=("situation", "procedure")),
            PILOT,
            D,
            Reason.CATEGORY_NOT_PERMITTED,
            withheld=("procedure",),
        ),
        id="a write that includes a category not granted is refused as a whole",
    ),
    pytest.param(
        Row(request(*GEM, "casework", WRITE, fields=(("situation", "housing"),)), PILOT, P, Reason.PERMITTED),
        id="a write holding only granted fields is permitted",
    ),
    pytest.param(
        Row(
            request(*GEM, "casework", WRITE, fields=(("situation", "housing"), ("situation", "shoe_size"))),
            PILOT,
            D,
            Reason.FIELD_NOT_PERMITTED,
        ),
        id="a write holding a field not granted is refused",
    ),
    pytest.param(
        Row(
            request(*GEM, "casework", WRITE, fields=(("situation", "housing"), ("identity", "v_number"))),
            PILOT,
            D,
            Reason.FIELD_NOT_PERMITTED,
        ),
        id="a write holding a field of another category is refused",
    ),
    pytest.param(
        Row(request(*GEM, "casework", region=None), PILOT, D, Reason.OUTSIDE_COVENANT_REGION, hides_existence=True),
        id="a read for a participant of unknown region is hidden",
    ),
    pytest.param(
        Row(
            request(*GEM, "casework", LIST, None),
            PILOT,
            P,
            Reason.PERMITTED,
            visible_regions=frozenset({"utrecht"}),
        ),
        id="a same-region list sees only the organisation's regions",
    ),
    pytest.param(
        Row(
            request(*IND, "return", LIST, None),
            PILOT,
            P,
            Reason.PERMITTED,
            visible_regions=frozenset({"utrecht", "groningen"}),
        ),
        id="a covenant-region list sees every region of the covenant",
    ),
    pytest.param(
        Row(
            request(*GEM, "casework", LIST, None),
            LOCAL,
            P,
            Reason.PERMITTED,
            visible_regions=frozenset({"utrecht"}),
        ),
        id="a list under the successor sees only the successor's regions",
    ),
    pytest.param(
        Row(request(*NGO_, "casework", LIST, None), PILOT, D, Reason.NO_RULE),
        id="a list no rule permits is refused",
    ),
    pytest.param(
        Row(
            request(*IND, "return", categories=("identity",)),
            PILOT,
            P,
            Reason.PERMITTED,
            fields={"identity": ("v_number", "family_name")},
        ),
        id="an explicit grant of the V-number includes it",
    ),
]


@pytest.mark.parametrize("row", TRUTH_TABLE)
def test_decide_follows_the_truth_table(row: Row) -> None:
    decision = decide(POLICY, row.request, row.when)
    assert (decision.permitted, decision.reason) == (row.permitted, row.reason)
    assert decision.hides_existence is row.hides_existence
    assert decision.withheld == row.withheld
    if row.fields is not None:
        assert decision.fields_by_category == row.fields
    if row.visible_regions is not None:
        assert decision.visible_regions == row.visible_regions
    if row.covenants is not None:
        assert decision.covenant_ids == row.covenants
    if not decision.permitted:
        assert decision.grants == ()
        assert decision.rule_ids == ()


def test_an_all_fields_grant_never_includes_the_national_id_field() -> None:
    decision = decide(POLICY, request(*GEM, "casework", categories=("identity",)), PILOT)
    assert decision.permitted
    assert "v_number" not in decision.fields_by_category["identity"]
    assert set(decision.fields_by_category["identity"]) == {"family_name", "birth_year"}


def test_a_permit_names_its_rules_legal_bases_activity_and_policy_version() -> None:
    decision = decide(POLICY, request(*IND, "return"), PILOT)
    assert decision.permitted
    assert decision.policy_version == policy_version(CONFIG)
    assert decision.policy_version.startswith("sha256:")
    assert decision.rule_ids == ("return-read-ind",)
    assert decision.legal_bases == ("nl-vw2000:art.107",)
    assert decision.processing_activity_id == "urn:test:register:return"
    assert decision.purpose == "return"
    assert {g.rule_id for g in decision.grants} == {"return-read-ind"}


def test_a_permit_from_several_rules_names_each_rule_and_its_basis() -> None:
    policy = compile_policy(make_config((*RULES, EXTRA_RULES[1])))
    decision = decide(policy, request(*GEM, "casework", categories=("identity",)), PILOT)
    assert decision.permitted
    assert decision.rule_ids == ("casework-read-gemeente", "casework-vnumber-gemeente")
    assert decision.legal_bases == ("eu-gdpr:A6-1-e", "eu-gdpr:A6-1-c")
    assert set(decision.fields_by_category["identity"]) == {"family_name", "birth_year", "v_number"}


def test_a_denial_still_names_the_policy_version_and_the_processing_activity() -> None:
    decision = decide(POLICY, request(*NGO_, "return"), PILOT)
    assert not decision.permitted
    assert decision.policy_version == POLICY.version
    assert decision.processing_activity_id == "urn:test:register:return"
    unknown = decide(POLICY, request(*NGO_, "fishing"), PILOT)
    assert unknown.processing_activity_id is None
    assert unknown.purpose == "fishing"


@pytest.mark.parametrize("op", [READ, WRITE])
def test_a_record_request_without_a_participant_region_is_denied(op: Operation) -> None:
    """Deny by default: without the participant's region no covenant or same-region condition can hold.

    Regression: decide() once skipped both region checks when `participant_region` was None, so a
    gemeente got a same-region rule's fields for a participant whose region was never established.
    """
    decision = decide(POLICY, request(*GEM, "casework", op, region=None, categories=("situation",)), PILOT)
    assert not decision.permitted
    assert decision.grants == ()


def test_a_covenant_ending_just_before_the_autumn_clock_change_stops_at_that_second() -> None:
    """Invariant 5 across a DST change: the covenant's last second is 02:59:59 CEST (00:59:59 UTC).

    Bug (gateway/policies/model.py, Covenant.ends_at): the extra second is added to the local wall
    time, giving 03:00:00 CET = 02:00:00 UTC, so the covenant stays in force one hour too long.
    """
    ending = COVENANTS[0].model_copy(update={"valid_until": datetime(2024, 10, 27, 2, 59, 59)})
    config = make_config().model_copy(update={"covenants": (ending, COVENANTS[1])})
    assert cross_check(config) == []
    policy = compile_policy(config)
    last_second = datetime(2024, 10, 27, 0, 59, 59, tzinfo=UTC).timestamp()
    an_hour_later = datetime(2024, 10, 27, 1, 30, tzinfo=UTC).timestamp()  # 02:30 CET, after the end
    assert decide(policy, request(*IND, "return"), last_second).permitted
    assert decide(policy, request(*IND, "return"), an_hour_later).reason is Reason.NO_COVENANT_IN_FORCE


def test_outside_its_covenant_regions_an_organisation_cannot_tell_a_participant_from_an_unknown_one() -> None:
    """Design choice: within a covenant's regions a party may learn that a participant exists (403 with
    the reason); outside them every answer hides existence (404), whether or not a rule would serve."""
    inside = decide(POLICY, request(*NGO_, "return", region="utrecht"), PILOT)
    outside = decide(POLICY, request(*NGO_, "return", region="limburg"), PILOT)
    assert not inside.permitted
    assert not inside.hides_existence
    assert not outside.permitted
    assert outside.hides_existence


# --- an independent oracle --------------------------------------------------------------------------


def oracle_in_force(cov: Covenant, ts: float) -> bool:
    """Return whether `cov` is in force at `ts`: from its first instant through its whole last second."""
    zone = ZoneInfo(cov.timezone)
    first = cov.valid_from if cov.valid_from.tzinfo else cov.valid_from.replace(tzinfo=zone)
    last = cov.valid_until if cov.valid_until.tzinfo else cov.valid_until.replace(tzinfo=zone)
    moment = datetime.fromtimestamp(ts, tz=UTC)
    return first <= moment and moment.replace(microsecond=0) <= last.replace(microsecond=0)


def oracle_fields(config: PolicyConfig, grant: Grant) -> set[str]:
    """Return the fields a grant may release: the named ones, or all but national-id fields for '*'."""
    category = next(c for c in config.categories if c.id == grant.category)
    if grant.fields != "*":
        return set(grant.fields)
    return {f.name for f in category.fields if (f.sensitivity or category.sensitivity) is not S.NATIONAL_ID}


def oracle_justifying(config: PolicyConfig, req: AccessRequest, ts: float) -> dict[str, set[str]]:
    """Return, per rule that covers `req` at `ts`, the covenants under which it does."""
    org = next((o for o in config.organisations if o.id == req.organisation), None)
    purpose = next((p for p in config.purposes if p.id == req.purpose), None)
    if org is None or purpose is None or purpose.aggregate_only or req.role not in org.roles:
        return {}
    region = req.participant_region
    if region is None and req.operation is not LIST:
        return {}
    out: dict[str, set[str]] = {}
    for rule in config.rules:
        names_org = org.id in rule.recipient.organisations or org.kind in rule.recipient.kinds
        if rule.purpose != purpose.id or req.operation not in rule.operations or not names_org:
            continue
        if req.role not in rule.recipient.roles:
            continue
        if region is not None and rule.condition == "same_region" and region not in org.regions:
            continue
        covs = {
            c.id
            for c in config.covenants
            if c.id in rule.covenants
            and oracle_in_force(c, ts)
            and org.id in {p.organisation for p in c.parties}
            and (region is None or region in c.regions)
        }
        if covs:
            out[rule.id] = covs
    return out


def assert_justified(config: PolicyConfig, req: AccessRequest, ts: float, decision: Decision) -> None:
    """Fail unless every part of a permit follows from a rule of `config` in force at `ts`."""
    if not decision.permitted:
        assert decision.grants == ()
        assert decision.rule_ids == ()
        assert decision.visible_regions == frozenset()
        return
    justifying = oracle_justifying(config, req, ts)
    assert justifying, "permitted, but no rule in force covers this request"
    assert set(decision.rule_ids) <= set(justifying)
    assert set(decision.covenant_ids) <= set().union(*justifying.values())
    rules = {r.id: r for r in config.rules}
    org = next(o for o in config.organisations if o.id == req.organisation)
    for grant in decision.grants:
        assert grant.rule_id in decision.rule_ids
        rule = rules[grant.rule_id]
        assert grant.legal_basis == rule.legal_basis.dpv
        same = [g for g in rule.grants if g.category == grant.category]
        allowed = set().union(*(oracle_fields(config, g) for g in same))
        assert set(grant.fields) <= allowed, f"{grant} releases fields no rule grants"
        if req.categories is not None:
            assert grant.category in req.categories
        if req.operation in WRITES:
            category = next(c for c in config.categories if c.id == grant.category)
            assert org.id in category.sources or org.kind.value in category.sources
    if req.operation in WRITES and req.fields is not None:
        granted = {(g.category, f) for g in decision.grants for f in g.fields}
        assert set(req.fields) <= granted, "a write holds fields no grant permits"
    for region in decision.visible_regions:
        assert any(
            region in next(c for c in config.covenants if c.id == cov_id).regions
            and (rules[rule_id].condition == "covenant_region" or region in org.regions)
            for rule_id, covs in justifying.items()
            for cov_id in covs
        ), f"region {region} is visible though no rule in force reaches it"


def explicitly_named(config: PolicyConfig, category: str, field_name: str) -> bool:
    """Return whether some rule names `category.field_name` by name (not through '*')."""
    return any(
        g.category == category and g.fields != "*" and field_name in g.fields for r in config.rules for g in r.grants
    )


def national_id_fields(config: PolicyConfig) -> set[tuple[str, str]]:
    """Return every (category, field) of national-id type."""
    return {
        (c.id, f.name) for c in config.categories for f in c.fields if (f.sensitivity or c.sensitivity) is S.NATIONAL_ID
    }


# --- strategies -------------------------------------------------------------------------------------

ORG_IDS = [o.id for o in ORGANISATIONS]
ALL_ROLES = sorted({r for o in ORGANISATIONS for r in o.roles} | {"intruder"})
CATEGORY_IDS = [c.id for c in CATEGORIES] + ["medical"]
ALL_FIELDS = [(c.id, f.name) for c in CATEGORIES for f in c.fields] + [("medical", "diagnosis")]


def _boundaries() -> list[float]:
    """Return instants on and around every covenant's start and end, computed from the config."""
    out = []
    for cov in COVENANTS:
        start = cov.valid_from.replace(tzinfo=AMS).astimezone(UTC)
        end = cov.valid_until.replace(tzinfo=AMS).astimezone(UTC) + timedelta(seconds=1)
        for edge in (start, end):
            for micros in (-1_000_000, -1, 0, 1):
                out.append((edge + timedelta(microseconds=micros)).timestamp())
    return out


def _instants(first: datetime, last: datetime) -> st.SearchStrategy[float]:
    """Return a strategy for POSIX times (whole microseconds) between two UTC wall-clock moments."""
    return st.datetimes(min_value=first, max_value=last, timezones=st.just(UTC)).map(lambda d: d.timestamp())


# Mostly while a covenant is in force (hypothesis favours the ends of a range), often on an edge.
moments = st.one_of(
    _instants(datetime(2019, 5, 1), datetime(2026, 11, 30)),
    _instants(datetime(2019, 5, 1), datetime(2026, 11, 30)),
    _instants(datetime(2018, 1, 1), datetime(2027, 12, 31)),
    st.sampled_from(_boundaries()),
    st.sampled_from(_boundaries()),
)


@st.composite
def any_requests(draw: st.DrawFn) -> AccessRequest:
    """Draw a request from the fixture's ids, sometimes with unknown values."""
    org_id = draw(st.sampled_from([*ORG_IDS * 5, "unknown-org"]))
    org = next((o for o in ORGANISATIONS if o.id == org_id), None)
    role = draw(st.sampled_from([*(org.roles * 6 if org else ()), *ALL_ROLES]))
    purpose = draw(st.sampled_from(["casework", "return", "monitoring", "fishing"]))
    return draw(_completed(org_id, role, purpose, draw(st.sampled_from(Operation))))


@st.composite
def cases_near_a_rule(draw: st.DrawFn) -> tuple[AccessRequest, float]:
    """Draw a request by an organisation a pool rule names, mostly while a covenant of that rule runs."""
    rule = draw(st.sampled_from([*POOL, *WRITE_RULES * 2]))  # writes have the most ways to go wrong
    recipient = rule.recipient
    named = [o for o in ORGANISATIONS if o.id in recipient.organisations or o.kind in recipient.kinds]
    org = draw(st.sampled_from(named))
    role = draw(st.sampled_from([r for r in org.roles if r in recipient.roles] or org.roles))
    # Any covenant of the rule, also one the organisation is not a party to.
    cov = draw(st.sampled_from([c for c in COVENANTS if c.id in rule.covenants]))
    first, last = (
        moment.replace(tzinfo=AMS).astimezone(UTC).replace(tzinfo=None) for moment in (cov.valid_from, cov.valid_until)
    )
    ts = draw(st.one_of(_instants(first, last), moments))
    op = draw(st.sampled_from(rule.operations))
    granted = [(g.category, f) for g in rule.grants for f in oracle_fields(CONFIG, g)]
    req = draw(_completed(org.id, role, rule.purpose, op, org.regions, [g.category for g in rule.grants], granted))
    return req, ts


def _completed(
    org: str,
    role: str,
    purpose: str,
    op: Operation,
    regions: tuple[str, ...] = (),
    categories: list[str] | None = None,
    fields: list[tuple[str, str]] | None = None,
) -> st.SearchStrategy[AccessRequest]:
    """Return a strategy adding a participant region (rarely none), categories and written fields.

    `regions`, `categories` and `fields` weight the draw towards those values, without excluding others.
    """
    places = st.sampled_from([*regions * 2, "utrecht", "groningen", "limburg", None])
    some = st.lists(st.sampled_from([*(categories or []) * 3, *CATEGORY_IDS]), max_size=3, unique=True)
    held = st.lists(st.sampled_from([*(fields or []) * 3, *ALL_FIELDS]), max_size=3, unique=True).map(tuple)
    return st.builds(
        request,
        st.just(org),
        st.just(role),
        st.just(purpose),
        st.just(op),
        st.one_of(st.none(), places) if op is LIST else places,
        st.one_of(st.none(), some.map(tuple)),
        st.one_of(st.none(), held) if op in WRITES else st.none(),
    )


# A request with the moment it is decided at.
cases = st.one_of(st.tuples(any_requests(), moments), cases_near_a_rule())


@st.composite
def random_policies(draw: st.DrawFn) -> tuple[PolicyConfig, CompiledPolicy]:
    """Draw a policy whose rules are a subset of the pool."""
    chosen = draw(st.sets(st.sampled_from([r.id for r in POOL])))
    config = make_config(tuple(r for r in POOL if r.id in chosen))
    return config, compile_policy(config)


PROPERTY = settings(max_examples=300, deadline=None)


# --- properties -------------------------------------------------------------------------------------


@PROPERTY
@given(case=cases)
def test_every_permit_is_justified_by_a_rule_in_force(case: tuple[AccessRequest, float]) -> None:
    req, ts = case
    assert_justified(CONFIG, req, ts, decide(POLICY, req, ts))


@PROPERTY
@given(case=cases)
def test_a_read_or_list_that_a_rule_in_force_covers_is_served_in_full(case: tuple[AccessRequest, float]) -> None:
    """The converse of justification: no false denials, no lost rules or fields, for whole requests."""
    req, ts = case
    if req.operation in WRITES or req.categories is not None:
        return
    justifying = oracle_justifying(CONFIG, req, ts)
    decision = decide(POLICY, req, ts)
    assert decision.permitted == bool(justifying)
    assert set(decision.rule_ids) == set(justifying)
    rules = {r.id: r for r in CONFIG.rules}
    grants = [g for rid in justifying for g in rules[rid].grants]
    expected = {(g.category, f) for g in grants for f in oracle_fields(CONFIG, g)}
    assert {(c, f) for c, fs in decision.fields_by_category.items() for f in fs} == expected


@PROPERTY
@given(policy=random_policies(), case=cases)
def test_a_permit_never_releases_a_national_id_field_no_rule_names(
    policy: tuple[PolicyConfig, CompiledPolicy], case: tuple[AccessRequest, float]
) -> None:
    (config, compiled), (req, ts) = policy, case
    decision = decide(compiled, req, ts)
    for grant in decision.grants:
        for name in grant.fields:
            if (grant.category, name) in national_id_fields(config):
                assert explicitly_named(config, grant.category, name)


@PROPERTY
@given(policy=random_policies(), case=cases)
def test_a_request_no_rule_of_the_policy_matches_is_denied(
    policy: tuple[PolicyConfig, CompiledPolicy], case: tuple[AccessRequest, float]
) -> None:
    (config, compiled), (req, ts) = policy, case
    org = next((o for o in config.organisations if o.id == req.organisation), None)
    matches = org is not None and any(
        r.purpose == req.purpose
        and req.operation in r.operations
        and req.role in r.recipient.roles
        and (org.id in r.recipient.organisations or org.kind in r.recipient.kinds)
        for r in config.rules
    )
    decision = decide(compiled, req, ts)
    if not matches:
        assert not decision.permitted
    assert_justified(config, req, ts, decision)


@PROPERTY
@given(case=cases)
def test_a_policy_without_rules_denies_everything(case: tuple[AccessRequest, float]) -> None:
    req, ts = case
    assert not decide(EMPTY_POLICY, req, ts).permitted


@PROPERTY
@given(case=cases)
def test_decide_is_pure(case: tuple[AccessRequest, float]) -> None:
    req, ts = case
    version, config = POLICY.version, POLICY.config
    first = decide(POLICY, req, ts)
    assert decide(POLICY, req, ts) == first
    assert decide(compile_policy(CONFIG), req, ts) == first
    assert POLICY.version == version == policy_version(POLICY.config)
    assert POLICY.config == config


def test_only_a_rule_that_names_register_permits_a_registration() -> None:
    """A write rule lets its source amend a participant's records; it never creates a participant."""
    registration = request(*GEM, "casework", REGISTER, categories=("situation",), fields=(("situation", "housing"),))
    assert decide(POLICY, registration, PILOT).reason is Reason.NO_RULE  # casework-write names write only
    with_register = compile_policy(make_config((*RULES, *EXTRA_RULES)))
    permitted = decide(with_register, registration, PILOT)
    assert permitted.permitted
    assert permitted.rule_ids == ("casework-register-gemeente",)
    ind = request(*IND, "casework", REGISTER, categories=("situation",))
    assert decide(with_register, ind, PILOT).reason is Reason.NO_RULE


def test_a_register_rule_obeys_the_source_condition_like_a_write() -> None:
    policy = compile_policy(make_config((*RULES, *EXTRA_RULES)))
    outside_own_region = request(*GEM, "casework", REGISTER, region="groningen", categories=("situation",))
    assert decide(policy, outside_own_region, PILOT).reason is Reason.OUTSIDE_RECIPIENT_REGION
    not_source = request(*GEM, "casework", REGISTER, categories=("situation", "procedure"))
    assert decide(policy, not_source, PILOT).reason is Reason.CATEGORY_NOT_PERMITTED
