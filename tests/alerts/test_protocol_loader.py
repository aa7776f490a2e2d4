"""Loading protocols: the shipped files, and precise errors for bad ones."""

from __future__ import annotations

import textwrap

import pytest

from alerts.protocol import (
    PROTOCOLS_DIR,
    PatientOverride,
    ProtocolError,
    RuleOverride,
    apply_override,
    load_protocol,
    parse_duration,
)

SHIPPED = ("covid19_home_oximetry", "copd", "heart_failure", "hypertension", "diabetes")

GOOD_RULE = """
[[rules]]
key = "spo2_low"
kind = "threshold"
title = "Low SpO2"
title_it = "SpO2 bassa"
metrics = ["spo2"]
bands = [{ level = "amber", op = "<=", value = 94 }, { level = "red", op = "<=", value = 92 }]
source = "NHS CO@h bands, docs/clinical-references.md#spo2-thresholds"
"""


def write(tmp_path, body: str, name: str = "demo") -> object:
    path = tmp_path / f"{name}.toml"
    header = f'key = "{name}"\nversion = "1.0.0"\ntitle = "Demo"\ntitle_it = "Demo"\n'
    path.write_text(header + textwrap.dedent(body), encoding="utf-8")
    return path


def errors_of(path) -> list[str]:
    with pytest.raises(ProtocolError) as caught:
        load_protocol(path)
    return caught.value.errors


def test_shipped_protocols_load_and_cite_sources(protocols):
    assert set(SHIPPED) <= set(protocols)
    kinds = {rule.kind for p in protocols.values() for rule in p.rules}
    assert kinds == {"threshold", "trend", "aggregate", "score", "missing_data"}
    for protocol in protocols.values():
        for rule in protocol.rules:
            cited = ("docs/clinical-references.md#", "http", "telemon")
            assert any(source in rule.source for source in cited)
            if rule.kind == "missing_data":
                assert rule.routing == "centre_task"
            else:
                assert rule.routing != "centre_task"


def test_confirm_timeout_defaults_to_30_minutes_and_every_missing_data_rule_has_a_due_time(
    protocols, tmp_path
):
    assert load_protocol(write(tmp_path, GOOD_RULE)).rules[0].confirm.timeout == 1800
    timed = GOOD_RULE.replace(
        'kind = "threshold"', 'kind = "threshold"\nconfirm = { count = 2, timeout = "10m" }'
    )
    assert load_protocol(write(tmp_path, timed)).rules[0].confirm.timeout == 600
    for protocol in protocols.values():
        for rule in protocol.rules:
            if rule.kind == "missing_data":
                assert rule.expected_every and rule.grace, (protocol.key, rule.key)


def test_copd_uses_news2_scale_2(protocols):
    assert protocols["copd"].rule("news2_partial").spo2_scale == 2
    assert protocols["covid19_home_oximetry"].rule("news2_partial").spo2_scale == 1


def test_good_file_loads(tmp_path):
    protocol = load_protocol(write(tmp_path, GOOD_RULE))
    rule = protocol.rule("spo2_low")
    assert [b.on for b in rule.bands] == ["spo2", "spo2"]
    assert (rule.confirm.count, rule.escalate_after) == (1, 7200)


T = 'title = "Low SpO2"'
BAD_EDITS = [
    ('metrics = ["spo2"]', 'metrics = ["sp02"]', "rule 'spo2_low' (rules[0]): field metrics[0]"),
    ('op = "<=", value = 94', 'op = "=<", value = 94', "field bands[0].op"),
    (
        'source = "NHS CO@h bands, docs/clinical-references.md#spo2-thresholds"',
        "",
        "field source: Field required",
    ),
    ('kind = "threshold"', 'kind = "treshold"', "rule 'spo2_low' (rules[0]): field kind"),
    (T, T + "\nconfirm = { count = 0 }", "field confirm.count"),
    ('title_it = "SpO2 bassa"\n', "", "rule 'spo2_low' (rules[0]): field title_it: Field required"),
    (T, T + '\nescalate_after = "soon"', "field escalate_after: invalid duration 'soon'"),
    (T, T + '\nroutng = "centre"', "field routng: Extra inputs"),
    ("value = 92", "value = 95", "the red band must be beyond the amber band"),
    ('op = "<=", value = 92', 'op = ">=", value = 99', "mix low (<, <=) and high (>, >=)"),
    ('level = "red"', 'level = "amber"', "a amber band on 'spo2' is already defined by bands[0]"),
]


@pytest.mark.parametrize(("old", "new", "expected"), BAD_EDITS)
def test_errors_name_file_rule_and_field(tmp_path, old, new, expected):
    assert old in GOOD_RULE
    path = write(tmp_path, GOOD_RULE.replace(old, new))
    errors = errors_of(path)
    assert any(str(path) in e and expected in e for e in errors), errors


def test_missing_data_must_be_routed_to_the_centre(tmp_path):
    body = """
    [[rules]]
    key = "spo2_gap"
    kind = "missing_data"
    title = "No SpO2"
    title_it = "Nessuna misura di SpO2"
    metrics = ["spo2"]
    bands = [{ level = "amber", op = ">", value = 12 }]
    routing = "gp_and_centre"
    source = "telemon default, docs/clinical-references.md#stale-data-and-alarm-handling"
    """
    errors = errors_of(write(tmp_path, body))
    assert any("rule 'spo2_gap'" in e and "must be routed as 'centre_task'" in e for e in errors)
    clinical = GOOD_RULE.replace('title = "Low SpO2"', 'title = "x"\nrouting = "centre_task"')
    errors = errors_of(write(tmp_path, clinical))
    assert any("reserved for missing_data rules" in e for e in errors)


def test_multi_metric_bands_need_on(tmp_path):
    body = GOOD_RULE.replace('metrics = ["spo2"]', 'metrics = ["spo2", "pulse_rate"]')
    errors = errors_of(write(tmp_path, body))
    assert any("'on' is required" in e for e in errors)


def test_score_bands_default_to_the_total(tmp_path):
    body = """
    [[rules]]
    key = "news2"
    kind = "score"
    title = "NEWS2"
    title_it = "NEWS2"
    bands = [
      { level = "red", op = ">=", value = 7 },
      { level = "amber", on = "max_parameter", op = ">=", value = 3 },
    ]
    source = "RCP NEWS2 2017, docs/clinical-references.md#news2"
    """
    rule = load_protocol(write(tmp_path, body)).rule("news2")
    assert [b.on for b in rule.bands] == ["total", "max_parameter"]
    assert rule.metrics == (
        "respiratory_rate",
        "spo2",
        "systolic",
        "pulse_rate",
        "body_temperature",
    )
    bad = body.replace('on = "max_parameter"', 'on = "pulse_rate"')
    assert any(
        "not one of the rule's channels (total, max_parameter)" in e
        for e in errors_of(write(tmp_path, bad))
    )


def test_duplicate_rule_keys_and_toml_syntax_and_file_name(tmp_path):
    errors = errors_of(write(tmp_path, GOOD_RULE + GOOD_RULE))
    assert any("duplicate rule keys ['spo2_low']" in e for e in errors)
    broken = write(tmp_path, GOOD_RULE.replace("[[rules]]", "[[rules]"), name="broken")
    assert any("TOML syntax" in e for e in errors_of(broken))
    path = tmp_path / "other_name.toml"
    path.write_text(write(tmp_path, GOOD_RULE).read_text())
    assert any("must match the file name" in e for e in errors_of(path))


def test_trend_and_aggregate_parameters_are_checked(tmp_path):
    trend = GOOD_RULE.replace(
        'kind = "threshold"', 'kind = "trend"\nwindow = "1h"\nmin_span = "2h"'
    )
    assert any("min_span must not exceed window" in e for e in errors_of(write(tmp_path, trend)))
    trend = GOOD_RULE.replace(
        'kind = "threshold"', 'kind = "trend"\nwindow = "1h"\nremeasure = "1h"'
    )
    assert any(
        "remeasure must be shorter than window" in e for e in errors_of(write(tmp_path, trend))
    )
    aggregate = GOOD_RULE.replace(
        'kind = "threshold"',
        'kind = "aggregate"\ndays = 3\nsessions = [[12, 4]]\ntimezone = "Mars/Base"',
    )
    errors = errors_of(write(tmp_path, aggregate))
    assert any("field sessions" in e for e in errors)
    assert any("unknown timezone 'Mars/Base'" in e for e in errors)


@pytest.mark.parametrize(
    ("text", "seconds"), [(90, 90), ("30m", 1800), ("2h", 7200), ("3d", 259200), ("1d12h", 129600)]
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "3 weeks", "h", True, 1.5])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_overrides_are_merged_and_validated(protocols):
    base = protocols["covid19_home_oximetry"]
    override = PatientOverride(
        rules={
            "news2_partial": RuleOverride(spo2_scale=2, supplemental_oxygen=True),
            "spo2_low": RuleOverride(confirm={"count": 3}, clear_margin=2),
        }
    )
    merged = apply_override(base, override)
    assert merged.rule("news2_partial").spo2_scale == 2
    assert merged.rule("news2_partial").supplemental_oxygen is True
    assert (merged.rule("spo2_low").confirm.count, merged.rule("spo2_low").clear_margin) == (3, 2)
    assert merged.rule("spo2_low").bands == base.rule("spo2_low").bands
    assert apply_override(base, None) is base


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ({"spo2_lo": RuleOverride(enabled=False)}, "rule 'spo2_lo': no such rule"),
        ({"spo2_low": RuleOverride(spo2_scale=2)}, "field spo2_scale: only score rules"),
        (
            {"spo2_low": RuleOverride(bands=({"level": "red", "op": ">=", "value": 99},
                                             {"level": "amber", "op": "<=", "value": 94}))},
            "rule 'spo2_low' (rules[0]): bands[1]: bands on 'spo2' mix",
        ),
        (
            {"spo2_low": RuleOverride(bands=({"level": "amber", "op": "<=", "value": 90},
                                             {"level": "red", "op": "<=", "value": 92}))},
            "the red band must be beyond the amber band",
        ),
    ],
)  # fmt: skip
def test_bad_overrides_are_rejected_precisely(protocols, rules, expected):
    with pytest.raises(ProtocolError) as caught:
        apply_override(protocols["covid19_home_oximetry"], PatientOverride(rules=rules))
    assert any(expected in e for e in caught.value.errors), caught.value.errors


def test_override_model_forbids_structural_changes():
    with pytest.raises(ValueError, match="window"):
        RuleOverride.model_validate({"window": "2d"})


def test_protocols_dir_holds_only_valid_files():
    for path in PROTOCOLS_DIR.glob("*.toml"):
        assert load_protocol(path).key == path.stem
