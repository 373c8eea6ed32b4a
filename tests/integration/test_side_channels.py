"""Side channels that would link or reveal participants across organisations (issue 10, item 4)."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from tests.conftest import Gateway

UNKNOWN = "p" + "a" * 26


def shape(response: Any) -> tuple[int, str, dict[str, Any]]:
    """Return the status, content type and body of a response, without what differs per request."""
    body = dict(response.json())
    assert body.pop("audit_seq") >= 1
    assert body.pop("trace_id")
    assert body.pop("instance") == response.request.url.path  # the path asked for, nothing it stands for
    return response.status_code, response.headers["content-type"], body


def test_an_out_of_region_read_for_an_aggregate_purpose_looks_like_an_unknown_pseudonym(gateway: Gateway) -> None:
    p = gateway.pseudonym_for("rotterdam", gateway.register("amsterdam"))
    headers = gateway.headers("rotterdam", "case_manager", "monitoring")
    known = gateway.http.get(f"/v1/participants/{p}", headers=headers)
    unknown = gateway.http.get(f"/v1/participants/{UNKNOWN}", headers=headers)
    assert shape(known) == shape(unknown)
    assert known.status_code == 404


def test_an_in_region_read_for_an_aggregate_purpose_is_still_refused_as_aggregate_only(gateway: Gateway) -> None:
    p = gateway.register("amsterdam")
    response = gateway.http.get(
        f"/v1/participants/{p}", headers=gateway.headers("amsterdam", "case_manager", "monitoring")
    )
    assert response.status_code == 403
    assert response.json()["code"] == "purpose_is_aggregate_only"


def test_an_access_report_about_another_regions_participant_looks_like_an_unknown_pseudonym(
    gateway: Gateway,
) -> None:
    p = gateway.pseudonym_for("rotterdam", gateway.register("amsterdam"))
    headers = gateway.headers("rotterdam", "privacy_officer", None, user="fg.rotterdam")
    path = "/v1/officer/participants/{}/access-report"
    known = gateway.http.get(path.format(p), params={"format": "json"}, headers=headers)
    unknown = gateway.http.get(path.format(UNKNOWN), params={"format": "json"}, headers=headers)
    assert shape(known) == shape(unknown)
    assert known.status_code == 404


def test_an_access_report_about_the_officers_own_regions_participant_is_served(gateway: Gateway) -> None:
    p = gateway.register("amsterdam")
    headers = gateway.headers("amsterdam", "privacy_officer", None, user="fg.amsterdam")
    response = gateway.http.get(
        f"/v1/officer/participants/{p}/access-report", params={"format": "json"}, headers=headers
    )
    assert response.status_code == 200


def test_a_listing_shows_the_day_of_registration_not_the_moment(gateway: Gateway) -> None:
    gateway.register("amsterdam")
    headers = gateway.headers("ngo-opvang-amsterdam", "counsellor", "shelter_counselling")
    (item,) = gateway.http.get("/v1/participants", headers=headers).json()["items"]
    assert item["registered_at"] == gateway.container.clock.now().astimezone(UTC).date().isoformat()
