"""The technical measures the gateway enforces, each proved by a named test (DPIA part D, register (g))."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.dpia.lang import N_


@dataclass(frozen=True)
class Measure:
    id: str
    title: str
    description: str
    tests: tuple[str, ...]  # "tests/<path>.py::<test function>"


_API = "tests/integration/test_exchange_api.py::"
_AUDIT = "tests/integration/test_audit_durability.py::"
_CRYPT = "tests/integration/test_encryption_at_rest.py::"
_EPOCHS = "tests/integration/test_key_epochs.py::"
_TOKEN = "tests/integration/test_token_forgery.py::"
_DECIDE = "tests/unit/test_decision.py::"
_CONFIG = "tests/unit/test_config.py::"
_GATE = "tests/integration/test_oversight_gate.py::"
_AFTER = "tests/integration/test_oauth_after_the_end.py::"
_PAGES = "tests/integration/test_page_signin.py::"
_SOURCES = "tests/integration/test_connectors_rest.py::"
_PORT = "tests/unit/test_connectors_port.py::"
_IMPORT = "tests/integration/test_connectors_csv.py::"

MEASURES: tuple[Measure, ...] = (
    Measure(
        "M01",
        N_("Deny by default"),
        N_(
            "A request is served only when a rule in force names this organisation, role, purpose and category; "
            "there is no switch that turns enforcement off."
        ),
        (
            _DECIDE + "test_a_request_no_rule_of_the_policy_matches_is_denied",
            _DECIDE + "test_a_policy_without_rules_denies_everything",
            _DECIDE + "test_every_permit_is_justified_by_a_rule_in_force",
        ),
    ),
    Measure(
        "M02",
        N_("Purpose on every request"),
        N_("A request without a known purpose (a processing activity of the register) is refused with 400."),
        (_API + "test_a_request_without_a_known_purpose_is_refused_with_400",),
    ),
    Measure(
        "M03",
        N_("Field-level data minimisation per purpose"),
        N_("The response holds only the fields the rules of the stated purpose grant."),
        (
            _API + "test_the_same_participant_is_cut_down_for_another_purpose",
            _CONFIG + "test_the_same_case_manager_sees_a_cut_down_record_for_shelter_counselling",
        ),
    ),
    Measure(
        "M04",
        N_("National identifiers only by explicit rule"),
        N_("A grant of all fields never includes a national-id field (V-nummer, UAVG art. 46)."),
        (
            _API + "test_the_v_number_is_released_only_where_a_rule_names_it",
            _DECIDE + "test_an_all_fields_grant_never_includes_the_national_id_field",
        ),
    ),
    Measure(
        "M05",
        N_("Covenant end enforced on every request"),
        N_("The decision checks the covenant's validity at request time, to the second; tokens do not outlive it."),
        (
            _API + "test_the_covenant_end_is_enforced_to_the_second",
            _DECIDE + "test_a_covenant_ending_just_before_the_autumn_clock_change_stops_at_that_second",
            _CONFIG + "test_national_partners_lose_access_at_the_first_second_of_2025_while_utrecht_continues_locally",
        ),
    ),
    Measure(
        "M06",
        N_("Region scoping; existence hidden outside one's regions"),
        N_("A participant outside the covenant's (and recipient's) regions is answered 404, like an unknown one."),
        (
            _API + "test_a_participant_of_another_region_is_not_found_for_a_city",
            _DECIDE + "test_outside_its_covenant_regions_an_organisation_cannot_tell_a_participant_from_an_unknown_one",
        ),
    ),
    Measure(
        "M07",
        N_("Only the source writes"),
        N_("Only the source organisation (bronhouder) of a category may write it."),
        (_API + "test_only_the_source_of_a_category_may_write_it",),
    ),
    Measure(
        "M08",
        N_("No log, no data (fail closed)"),
        N_(
            "Every decision is durably in the audit log before any data leaves; if the log cannot write, "
            "the gateway answers 503 and releases nothing."
        ),
        (
            _AUDIT + "test_when_the_audit_store_cannot_write_a_read_answers_503_and_releases_nothing",
            _AUDIT + "test_when_the_audit_store_cannot_write_a_write_changes_nothing",
        ),
    ),
    Measure(
        "M09",
        N_("Complete audit trail without contents"),
        N_(
            "Each response has exactly one committed audit entry naming who, what, why (purpose, legal basis, "
            "rule, policy version) and when, never record contents."
        ),
        (
            _AUDIT + "test_every_response_has_exactly_one_committed_entry_with_its_trace_id",
            _AUDIT + "test_an_audit_entry_names_who_what_why_and_never_the_contents",
            _API + "test_a_purpose_without_a_rule_for_the_caller_is_denied_and_logged",
        ),
    ),
    Measure(
        "M10",
        N_("Tamper-evident audit log"),
        N_("Entries are hash-chained; altering or deleting an entry is detected at that entry."),
        (
            _AUDIT + "test_editing_an_entry_breaks_the_chain_at_that_entry",
            _AUDIT + "test_deleting_an_entry_breaks_the_chain",
        ),
    ),
    Measure(
        "M11",
        N_("Encryption at rest"),
        N_(
            "Records are stored only as AES-GCM ciphertext under per-participant data keys; the key-encryption "
            "key never enters the database."
        ),
        (
            _CRYPT + "test_registered_values_are_stored_only_as_ciphertext_in_every_table",
            _CRYPT + "test_the_kek_is_not_in_the_sqlite_file_or_its_wal",
        ),
    ),
    Measure(
        "M12",
        N_("Destruction by crypto-shredding"),
        N_(
            "Destroying a data key makes that data unrecoverable from the database at once. A database backup "
            "made before then becomes unreadable only when the key's epoch (the month it fell due) is destroyed, "
            "which the retention run does once that month has passed; held data is moved to a hold epoch first. "
            "Until then, and for data without a due date (the open epoch) or from before key epochs, such a "
            "backup stays readable with the key store, and the signed destruction record says so."
        ),
        (
            _CRYPT + "test_the_kek_decrypts_no_ciphertext_of_a_destroyed_category_with_any_remaining_key",
            _CRYPT + "test_a_destroyed_wrapped_key_is_gone_from_the_sqlite_file_after_a_checkpoint",
            _CRYPT + "test_a_destroyed_category_is_absent_from_a_permitted_read",
            _EPOCHS + "test_a_run_destroys_an_epoch_only_once_its_month_has_fully_passed",
            _EPOCHS
            + "test_a_backup_made_before_the_run_opens_no_destroyed_record_once_restored_but_held_records_still_open",
            _EPOCHS + "test_a_rerun_finishes_an_epoch_destruction_a_crash_interrupted_after_the_rewrap",
            "tests/unit/test_key_epochs.py::test_the_statements_never_claim_unreadable_backups_for_an_epoch_not_destroyed",
            "tests/e2e/test_verify_cli.py::test_verify_refuses_a_validly_signed_destruction_record_whose_statement_overstates",
        ),
    ),
    Measure(
        "M13",
        N_("Per-recipient pseudonyms"),
        N_("Each organisation sees its own pseudonym for a participant, so recipients cannot link their data."),
        (_API + "test_each_organisation_sees_its_own_stable_pseudonym",),
    ),
    Measure(
        "M14",
        N_("Strong authentication of partner systems"),
        N_("Only signed access tokens from trusted keys are accepted; the organisation comes from the token."),
        (
            _TOKEN + "test_a_forged_or_invalid_token_is_refused_with_401_and_releases_nothing",
            _TOKEN + "test_a_rotterdam_token_cannot_read_an_amsterdam_participant_by_claiming_amsterdam",
            _API + "test_no_participant_data_without_a_token",
        ),
    ),
    Measure(
        "M15",
        N_("Acting user and role on every request"),
        N_("The acting person and role are required and logged; a role the organisation lacks is denied."),
        (
            _API + "test_the_acting_user_and_role_are_required",
            _API + "test_a_role_the_organisation_does_not_have_is_denied",
        ),
    ),
    Measure(
        "M16",
        N_("Configuration refuses unlawful grants"),
        N_(
            "A rule granting special or criminal data for a purpose without an art. 9 / art. 10 condition is "
            "refused; the gateway does not start on an invalid configuration."
        ),
        (
            _CONFIG + "test_an_ngo_rule_granting_screening_for_a_purpose_without_art10_basis_is_refused",
            "tests/e2e/test_cli_and_demo.py::test_the_server_refuses_to_start_on_an_invalid_configuration",
        ),
    ),
    Measure(
        "M17",
        N_("Traceable across partners"),
        N_("The caller's W3C trace context is continued and returned, so an entry links to the partner's own log."),
        (_API + "test_the_callers_trace_is_continued_and_returned",),
    ),
    Measure(
        "M18",
        N_("DPIA and register kept current"),
        N_(
            "The register and DPIA are generated from the enforced configuration; the test run fails when they "
            "are stale."
        ),
        ("tests/e2e/test_dpia_cli.py::test_changing_one_sharing_rule_makes_dpia_check_fail_until_regenerated",),
    ),
    Measure(
        "M19",
        N_("Oversight through the same gate"),
        N_(
            "Log review, art. 15 reports, evidence, legal holds, notices and rehearsals are processing activities in "
            "the configuration, decided by the same gate as the exchange and logged before anything is shown; no "
            "endpoint decides a role by hand."
        ),
        (
            _GATE + "test_the_officer_api_follows_oversight_yaml_and_logs_both_outcomes",
            _GATE + "test_the_evidence_viewer_follows_oversight_yaml_and_logs_both_outcomes",
            _GATE + "test_the_lifecycle_jurist_check_follows_oversight_yaml_and_logs_both_outcomes",
            "tests/unit/test_layering.py::test_no_edge_module_decides_a_role_by_comparing_it_with_a_role_name",
        ),
    ),
    Measure(
        "M20",
        N_("After the end, oversight roles only, until the aftercare ends"),
        N_(
            "Once no covenant of a party is in force, its access tokens carry only the roles of oversight activities "
            "whose aftercare runs; exchange roles are refused with the reason, and everything stops when the "
            "aftercare ends."
        ),
        (
            _AFTER + "test_after_the_end_a_client_gets_a_token_for_its_oversight_roles_only",
            _AFTER + "test_after_the_end_asking_for_an_exchange_role_is_an_invalid_scope_that_says_why",
            _AFTER + "test_a_day_after_the_aftercare_the_client_is_unauthorized_and_told_why",
            "tests/e2e/test_after_the_end_scenario.py::test_the_end_and_the_year_after_as_partners_and_a_jurist_live_it",
        ),
    ),
    Measure(
        "M21",
        N_("Refusals before the decision are evidence"),
        N_(
            "A refused request or token request of an identified client (scope, revocation, certificate, missing "
            "acting user) is an audit entry before the answer, and counts in the revocation report."
        ),
        (
            _AFTER + "test_api_refusals_of_a_verified_token_are_audited_before_the_answer",
            _AFTER + "test_the_revocation_report_counts_refusals_before_the_decision_after_the_end",
        ),
    ),
    Measure(
        "M22",
        N_("Page sessions end at once"),
        N_(
            "Officer and jurist pages re-verify the token on every page (scope, revocation, certificate, rate limit); "
            "sign-out and a disabled client end the server-side session at once."
        ),
        (
            _PAGES + "test_a_token_whose_scope_lacks_the_role_cannot_sign_in_and_the_refusal_is_logged",
            _PAGES + "test_after_the_client_is_disabled_the_next_page_is_refused_and_the_session_ends",
            _PAGES + "test_after_sign_out_the_old_cookie_is_refused",
        ),
    ),
    Measure(
        "M23",
        N_("Brokered sources and file imports on the same gate"),
        N_(
            "A partner's source system is called only after the decision is durably logged, is asked for the "
            "permitted fields only and its answer is cut to them again; a failing source releases nothing and the "
            "log says so. A file import is one logged activity: every row validated, rejections reported, all or "
            "nothing unless partial."
        ),
        (
            _SOURCES + "test_a_brokered_read_returns_only_the_permitted_fields_though_the_source_returns_more",
            _SOURCES + "test_a_misbehaving_source_gives_a_gateway_error_releases_nothing_and_is_logged_first",
            _PORT + "test_no_adapter_reads_or_writes_without_the_minted_access",
            _IMPORT + "test_malformed_rows_refuse_the_whole_file_and_are_reported_with_row_and_reason",
        ),
    ),
)


@dataclass(frozen=True)
class InherentRisk:
    """A risk of the processing itself (not of one configuration), with the measures against it."""

    id: str
    title: str
    origin: str
    likelihood: str
    impact: str
    measures: tuple[str, ...]


INHERENT_RISKS: tuple[InherentRisk, ...] = (
    InherentRisk(
        "R-after-the-end",
        N_("Exchange that goes on, or oversight that stops, at a covenant's end"),
        N_("Partners keep exchanging after the end, or the parties can no longer check and prove that it stopped."),
        "medium",
        "high",
        ("M05", "M19", "M20", "M21"),
    ),
    InherentRisk(
        "R-unauthorised-access",
        N_("Unauthorised access to a participant's records"),
        N_("A partner's staff or system asks for more than its task needs, or an outsider poses as a partner."),
        "medium",
        "high",
        ("M01", "M06", "M14", "M15"),
    ),
    InherentRisk(
        "R-purpose-creep",
        N_("Use for another purpose than the one shared for"),
        N_("Data shared for one purpose is used for another (doelbinding)."),
        "medium",
        "high",
        ("M02", "M03", "M09"),
    ),
    InherentRisk(
        "R-excess-data",
        N_("More data than necessary"),
        N_("Whole records or national identifiers are shared where a few fields would do."),
        "medium",
        "medium",
        ("M03", "M04", "M13"),
    ),
    InherentRisk(
        "R-after-covenant",
        N_("Sharing continues after the covenant ended"),
        N_("Tokens, caches or habits outlive the covenant and its mandate."),
        "medium",
        "high",
        ("M05",),
    ),
    InherentRisk(
        "R-no-accountability",
        N_("Disclosures cannot be accounted for"),
        N_("A disclosure is not logged, or the log is altered afterwards, so access requests and supervision fail."),
        "low",
        "high",
        ("M08", "M09", "M10", "M17"),
    ),
    InherentRisk(
        "R-storage-breach",
        N_("Breach of the stored copies"),
        N_("The database or a backup is copied or kept beyond its retention."),
        "low",
        "high",
        ("M11", "M12"),
    ),
    InherentRisk(
        "R-wrong-source",
        N_("Incorrect data from a party that is not its source"),
        N_("A party overwrites data it does not answer for, and others decide on it."),
        "low",
        "medium",
        ("M07",),
    ),
    InherentRisk(
        "R-drift",
        N_("Documents and practice drift apart"),
        N_("The DPIA and register describe another sharing than the gateway enforces."),
        "medium",
        "medium",
        ("M16", "M18"),
    ),
)


def measure(measure_id: str) -> Measure:
    """Return the measure with this id."""
    return next(m for m in MEASURES if m.id == measure_id)
