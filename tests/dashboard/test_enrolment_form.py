"""The enrolment form's checks as pure functions: what each field accepts and refuses."""

from __future__ import annotations

from datetime import date

import pytest

from alerts.protocol import PatientOverride, ProtocolError, apply_override
from dashboard.bands import protocols
from dashboard.enrolment_form import parse_enrolment

TODAY = date(2026, 12, 3)


def _form(**fields: object) -> dict[str, list[str]]:
    base: dict[str, object] = {
        "code": "P-1",
        "given_name": "Rosa",
        "family_name": "Gallo",
        "gp_id": "7",
        "consent_date": "2026-12-01",
        "protocol": ["hypertension"],
    }
    merged = base | fields
    return {k: v if isinstance(v, list) else [str(v)] for k, v in merged.items()}


def test_a_plain_enrolment_follows_the_protocol_unchanged() -> None:
    new, errors = parse_enrolment(_form(phone="+39 333 111 2222"), protocols(), today=TODAY)
    assert errors == {} and new is not None
    assert new.phone == "+393331112222" and new.protocols == {"hypertension": {}}
    assert new.language == "it" and new.consent_date == date(2026, 12, 1)


def test_a_high_band_s_red_must_stay_above_its_amber_on_the_same_metric() -> None:
    # home_bp_mean's bands: 0 amber systolic 135, 1 red systolic 150, 2 amber diastolic 85...
    _, errors = parse_enrolment(
        _form(**{"band:hypertension:home_bp_mean:1": "130", "why:hypertension:home_bp_mean": "x"}),
        protocols(),
        today=TODAY,
    )
    assert errors == {
        "band:hypertension:home_bp_mean:1": ("enrol.error.above_amber", {"amber": "135"})
    }


def test_italian_decimals_the_schedule_and_the_reason_they_need() -> None:
    new, errors = parse_enrolment(
        _form(
            **{
                "band:hypertension:home_bp_mean:0": "140,5",
                "every:hypertension:bp_not_measuring": "72",
                "why:hypertension:home_bp_mean": "white-coat effect excluded",
                "why:hypertension:bp_not_measuring": "measures every 3 days",
            }
        ),
        protocols(),
        today=TODAY,
    )
    assert errors == {} and new is not None
    rules = new.protocols["hypertension"]["rules"]
    assert rules["home_bp_mean"]["bands"][0]["value"] == 140.5
    assert rules["bp_not_measuring"] == {
        "expected_every": 72 * 3600,
        "reason": "measures every 3 days",
    }
    applied = apply_override(
        protocols()["hypertension"], PatientOverride.model_validate(new.protocols["hypertension"])
    )
    assert applied.rule("bp_not_measuring").expected_every == 72 * 3600  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("band:hypertension:home_bp_mean:0", "400", "enrol.error.plausible"),
        ("band:hypertension:home_bp_mean:0", "abc", "enrol.error.number"),
        ("every:hypertension:bp_not_measuring", "0", "enrol.error.every"),
        ("phone", "0039333", "enrol.error.phone"),
        ("consent_date", "2027-01-01", "enrol.error.consent"),
        ("birth_date", "1950-02-31", "enrol.error.date"),
        ("code", "bad code", "enrol.error.code"),
        ("protocol", [], "enrol.error.protocol_required"),
        ("protocol", ["no_such"], "enrol.error.protocol_required"),
        ("gp_id", "", "enrol.error.required"),
    ],
)
def test_each_refusal_is_named_on_its_field(field: str, value: object, error: str) -> None:
    new, errors = parse_enrolment(_form(**{field: value}), protocols(), today=TODAY)
    assert new is None and errors[field][0] == error


def test_only_a_not_measuring_rule_takes_a_schedule() -> None:
    override = PatientOverride.model_validate(
        {"rules": {"home_bp_mean": {"expected_every": "24h", "reason": "x"}}}
    )
    with pytest.raises(ProtocolError, match="only missing_data rules"):
        apply_override(protocols()["hypertension"], override)
