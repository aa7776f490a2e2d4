"""The enrolment form without JSON: its fields read and checked, each error kept for its field.

Pure functions: a submitted form (name -> values) becomes an ``Enrolment`` or a dict of errors
keyed by field name, each an i18n key with its values, so the page re-renders with the message
next to the field and the admin's values kept.

Threshold overrides are shown band by band next to the protocol's default. Only the rules whose
bands compare a metric's own values (threshold, aggregate) are editable here: their values are
checked against the metric's plausible range and against the rule's other band (a red band
beyond the amber one). A not-measuring rule's interval is the patient's schedule. Any value that
differs from the protocol needs a reason, which the override keeps (``RuleOverride.reason``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import ValidationError

from alerts.protocol import (
    MissingDataRule,
    PatientOverride,
    Protocol,
    ProtocolError,
    apply_override,
)
from telemon.metrics import METRICS

Errors = dict[str, tuple[str, dict[str, object]]]
Form = Mapping[str, Sequence[str]]

# The rule kinds whose bands are a metric's own values (a trend compares changes, a score points).
EDITABLE_KINDS = ("threshold", "aggregate")
CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
SEXES = ("female", "male", "other", "unknown")
LANGUAGES = ("it", "en")
HOUR = 3600


@dataclass(frozen=True)
class BandField:
    """One band of a rule as the form shows it: the protocol's value and the patient's."""

    name: str
    level: str
    op: str
    on: str
    default: float
    value: float


@dataclass(frozen=True)
class RuleFields:
    protocol: str
    key: str
    title: str
    title_it: str
    bands: tuple[BandField, ...] = ()
    # A not-measuring rule: hours between readings, the protocol's and the patient's.
    every_name: str | None = None
    every_default: float | None = None
    every_value: float | None = None
    reason_name: str = ""
    reason: str = ""


@dataclass(frozen=True)
class Enrolment:
    code: str
    given_name: str
    family_name: str
    birth_date: date | None
    sex: str | None
    phone: str | None
    language: str
    gp_id: int
    care_team_id: int | None
    consent_date: date
    # protocol name -> the override JSON stored in patient_protocols.overrides
    protocols: dict[str, dict[str, Any]] = field(default_factory=dict)


def band_name(protocol: str, rule: str, index: int) -> str:
    return f"band:{protocol}:{rule}:{index}"


def rule_fields(protocol: Protocol, overrides: Mapping[str, Any]) -> list[RuleFields]:
    """The editable rules of ``protocol`` with the patient's stored override values."""
    stored = overrides.get("rules", {})
    out = []
    for rule in protocol.rules:
        own = stored.get(rule.key, {})
        own_bands = own.get("bands") or []
        reason = own.get("reason", "")
        reason_name = f"why:{protocol.key}:{rule.key}"
        if rule.kind in EDITABLE_KINDS:
            bands = []
            for i, band in enumerate(rule.bands):
                value = own_bands[i]["value"] if i < len(own_bands) else band.value
                bands.append(
                    BandField(
                        band_name(protocol.key, rule.key, i),
                        band.level,
                        band.op,
                        band.channel,
                        band.value,
                        value,
                    )
                )
            out.append(
                RuleFields(
                    protocol.key,
                    rule.key,
                    rule.title,
                    rule.title_it,
                    tuple(bands),
                    reason_name=reason_name,
                    reason=reason,
                )
            )
        elif isinstance(rule, MissingDataRule) and rule.expected_every:
            default = rule.expected_every / HOUR
            every = own.get("expected_every")
            out.append(
                RuleFields(
                    protocol.key,
                    rule.key,
                    rule.title,
                    rule.title_it,
                    every_name=f"every:{protocol.key}:{rule.key}",
                    every_default=default,
                    every_value=every / HOUR if every else default,
                    reason_name=reason_name,
                    reason=reason,
                )
            )
    return out


def _one(form: Form, name: str) -> str:
    values = form.get(name) or [""]
    return values[0].strip()


def _number(text: str) -> float | None:
    try:
        value = float(text.replace(",", "."))  # an Italian keyboard writes 37,5
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _row_id(text: str) -> int | None:
    return int(text) if text.isdigit() and 0 < int(text) <= 2**62 else None


def parse_overrides(protocol: Protocol, form: Form, errors: Errors) -> dict[str, Any]:
    """The override of ``protocol`` the form asks for; errors go into ``errors``."""
    rules: dict[str, Any] = {}
    for fields in rule_fields(protocol, {}):
        rule = protocol.rule(fields.key)
        change: dict[str, Any] = {}
        if fields.bands:
            values: list[float] = []
            for band in fields.bands:
                text = _one(form, band.name)
                value = band.default if text == "" else _number(text)
                if value is None:
                    errors[band.name] = ("enrol.error.number", {})
                    value = band.default
                metric = METRICS.get(band.on)
                if metric and not metric.plausible_min <= value <= metric.plausible_max:
                    errors[band.name] = (
                        "enrol.error.plausible",
                        {"min": f"{metric.plausible_min:g}", "max": f"{metric.plausible_max:g}"},
                    )
                values.append(value)
            _check_sides(fields.bands, values, errors)
            if values != [b.default for b in fields.bands]:
                change["bands"] = [
                    b.model_dump(mode="json") | {"value": v}
                    for b, v in zip(rule.bands, values, strict=True)
                ]
        if fields.every_name:
            text = _one(form, fields.every_name)
            hours = fields.every_default if text == "" else _number(text)
            if hours is None or not 1 <= hours <= 24 * 30:
                errors[fields.every_name] = ("enrol.error.every", {})
            elif hours != fields.every_default:
                change["expected_every"] = round(hours * HOUR)
        if change:
            reason = _one(form, fields.reason_name)
            if not reason:
                errors[fields.reason_name] = ("enrol.error.reason", {})
            change["reason"] = reason
            rules[fields.key] = change
    override = {"rules": rules} if rules else {}
    if rules and not any(k.startswith(f"band:{protocol.key}:") for k in errors):
        # The engine's own check, last: what it would refuse is refused here.
        try:
            apply_override(protocol, PatientOverride.model_validate(override))
        except (ValidationError, ProtocolError) as exc:
            errors[f"protocol:{protocol.key}"] = ("enrol.error.protocol", {"detail": str(exc)})
    return override


def _check_sides(bands: Sequence[BandField], values: Sequence[float], errors: Errors) -> None:
    """A red band lies beyond the amber band of the same channel (lower for a low band)."""
    for red_i, red in enumerate(bands):
        if red.level != "red":
            continue
        for amber_i, amber in enumerate(bands):
            if amber.level != "amber" or amber.on != red.on:
                continue
            low = red.op in ("<", "<=")
            wrong = values[red_i] > values[amber_i] if low else values[red_i] < values[amber_i]
            if wrong and red.name not in errors:
                errors[red.name] = (
                    "enrol.error.below_amber" if low else "enrol.error.above_amber",
                    {"amber": f"{values[amber_i]:g}"},
                )


def parse_enrolment(
    form: Form,
    protocols: Mapping[str, Protocol],
    *,
    today: date,
    editing: bool = False,
) -> tuple[Enrolment | None, Errors]:
    """The enrolment the form describes, or the errors by field (never both)."""
    errors: Errors = {}
    code = _one(form, "code")
    if not editing and not CODE.match(code):
        errors["code"] = ("enrol.error.code", {})
    names = {n: _one(form, n) for n in ("given_name", "family_name")}
    for name, value in names.items():
        if not value or len(value) > 200 or "\x00" in value:
            errors[name] = ("enrol.error.required", {})
    birth_text = _one(form, "birth_date")
    birth = _date(birth_text) if birth_text else None
    if birth_text and (birth is None or birth > today):
        errors["birth_date"] = ("enrol.error.date", {})
    sex = _one(form, "sex") or None
    if sex is not None and sex not in SEXES:
        errors["sex"] = ("enrol.error.required", {})
    phone = _one(form, "phone").replace(" ", "") or None
    if phone is not None and not E164.match(phone):
        errors["phone"] = ("enrol.error.phone", {})
    language = _one(form, "language") or "it"
    if language not in LANGUAGES:
        errors["language"] = ("enrol.error.required", {})
    gp_id = _row_id(_one(form, "gp_id"))
    if gp_id is None:
        errors["gp_id"] = ("enrol.error.required", {})
    team_text = _one(form, "care_team_id")
    care_team_id = _row_id(team_text) if team_text else None
    if team_text and care_team_id is None:
        errors["care_team_id"] = ("enrol.error.required", {})
    consent = _date(_one(form, "consent_date"))
    if consent is None or consent > today:
        errors["consent_date"] = ("enrol.error.consent", {})
    chosen = [p for p in form.get("protocol", []) if p]
    unknown = [p for p in chosen if p not in protocols]
    if not chosen or unknown:
        errors["protocol"] = ("enrol.error.protocol_required", {})
    overrides = {
        name: parse_overrides(protocols[name], form, errors) for name in chosen if name in protocols
    }
    if errors:
        return None, errors
    assert gp_id is not None and consent is not None  # the checks above said so
    return (
        Enrolment(
            code=code,
            given_name=names["given_name"],
            family_name=names["family_name"],
            birth_date=birth,
            sex=sex,
            phone=phone,
            language=language,
            gp_id=gp_id,
            care_team_id=care_team_id,
            consent_date=consent,
            protocols=overrides,
        ),
        {},
    )
