"""Escalation chains as protocols declare them: finite for GPs by construction, refused otherwise.

A clinical lead writes the chain in the protocol's TOML; a chain that would text a GP more than
``MAX_GP_SMS_PER_LEVEL`` times for one episode, or repeat anything but its last step, does not
load, and the error says which level and step, and why.
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts import escalation
from alerts.protocol import (
    AMBER,
    MAX_GP_SMS_PER_LEVEL,
    RED,
    EscalationStep,
    ProtocolError,
    load_protocol,
    load_protocols,
)

RULE = """
[[rules]]
key = "spo2_low"
kind = "threshold"
title = "Low SpO2"
title_it = "SpO2 bassa"
metrics = ["spo2"]
bands = [{ level = "amber", op = "<=", value = 94 }, { level = "red", op = "<=", value = 92 }]
source = "NHS CO@h bands, docs/clinical-references.md#spo2-thresholds"
"""
T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def write(tmp_path: Path, escalation_table: str) -> Path:
    path = tmp_path / "demo.toml"
    header = 'key = "demo"\nversion = "1.0.0"\ntitle = "Demo"\ntitle_it = "Demo"\n'
    path.write_text(
        header + "[escalation]\n" + textwrap.dedent(escalation_table) + RULE, encoding="utf-8"
    )
    return path


@pytest.mark.parametrize(
    ("table", "error"),
    [
        (
            'red = [{ after = "30m", to = "gp" }, { after = "30m", to = "gp" }]',
            "field escalation: red: the GP would get 3 SMS for one episode "
            "(at most 2, counting a red episode's opening SMS)",
        ),
        (
            'amber = [{ after = "1h", to = "gp" }, { after = "1h", to = "gp" },'
            ' { after = "1h", to = "gp" }]',
            "field escalation: amber: the GP would get 3 SMS for one episode",
        ),
        (
            'amber = [{ after = "1h", to = "duty_phone", every = "1h" },'
            ' { after = "1h", to = "gp" }]',
            "field escalation: amber[0]: only the last step may repeat ('every')",
        ),
        (
            'red = [{ after = "30m", to = "gp", every = "2h" }]',
            "field escalation: red[0]: a step to the GP must not repeat",
        ),
        (
            'red = [{ after = "30m", to = "nurse" }]',
            "field escalation.red[0].to: Input should be 'gp' or 'duty_phone'",
        ),
        (
            'red = [{ after = "0m", to = "duty_phone" }]',
            "field escalation.red[0].after: Input should be greater than 0",
        ),
        (
            'red = [{ after = "soon", to = "duty_phone" }]',
            "field escalation.red[0].after: invalid duration 'soon'",
        ),
        (
            'red = [{ after = "30m", to = "duty_phone", times = 3 }]',
            "field escalation.red[0]: 'times' bounds a repeating step: give it 'every' too",
        ),
    ],
    ids=[
        "red-gp-3",
        "amber-gp-3",
        "repeat-not-last",
        "gp-repeats",
        "recipient",
        "zero",
        "bad",
        "times-alone",
    ],
)
def test_a_chain_that_would_pester_a_gp_is_refused_with_a_clear_message(
    tmp_path: Path, table: str, error: str
) -> None:
    path = write(tmp_path, table)

    with pytest.raises(ProtocolError) as caught:
        load_protocol(path)

    [message] = caught.value.errors
    assert message.startswith(f"{path}: {error}")


def test_a_chain_within_the_limit_loads_and_an_undeclared_level_keeps_the_default(
    tmp_path: Path,
) -> None:
    protocol = load_protocol(
        write(tmp_path, 'amber = [{ after = "2h", to = "gp" }, { after = "6h", to = "gp" }]')
    )

    assert protocol.escalation.chain(AMBER) == (
        EscalationStep(after=7200, to="gp"),
        EscalationStep(after=21600, to="gp"),
    )
    assert protocol.escalation.chain(RED) == (
        EscalationStep(after=1800, to="gp"),
        EscalationStep(after=1800, to="duty_phone", every=3600, times=24),
    )
    assert protocol.escalation.chain(0) == ()


def steps_taken(chain: tuple[EscalationStep, ...], until: datetime) -> list[tuple[datetime, str]]:
    """When an episode nobody acknowledges takes each step, from T0 to ``until``, and to whom."""
    out = []
    position = escalation.start(chain, T0)
    while position.due is not None and position.due <= until:
        at = position.due
        step, position = escalation.take(chain, position.step, at)
        out.append((at, step.to))
    return out


@pytest.mark.parametrize("protocol", sorted(load_protocols()))
def test_every_shipped_chain_texts_a_gp_at_most_twice_per_level_however_long_nobody_acts(
    protocol: str,
) -> None:
    chains = load_protocols()[protocol].escalation
    week = T0 + timedelta(days=7)

    red = steps_taken(chains.chain(RED), week)
    amber = steps_taken(chains.chain(AMBER), week)

    # A red episode's opening SMS reaches the GP too.
    assert 1 + sum(to == "gp" for _, to in red) <= MAX_GP_SMS_PER_LEVEL
    assert sum(to == "gp" for _, to in amber) <= MAX_GP_SMS_PER_LEVEL
    # Red ends with the duty phone, hourly or two-hourly for a day, then waits in the queue: a
    # week nobody acts on is a day of reminders, not a week of them.
    duty = [at for at, to in red if to == "duty_phone"]
    assert red[-1][1] == "duty_phone" and 12 <= len(duty) <= 24
    assert duty[-1] - duty[0] < timedelta(days=1)


def test_positions_along_the_default_red_chain() -> None:
    chain = (
        EscalationStep(after=1800, to="gp"),
        EscalationStep(after=1800, to="duty_phone", every=3600),
    )

    assert [(at - T0, to) for at, to in steps_taken(chain, T0 + timedelta(hours=3))] == [
        (timedelta(minutes=30), "gp"),
        (timedelta(hours=1), "duty_phone"),
        (timedelta(hours=2), "duty_phone"),
        (timedelta(hours=3), "duty_phone"),
    ]
    # An acknowledgement lapsing after the GP's reminder resumes at the duty phone's step;
    # after the repeating step, it repeats, counting each time it was taken.
    assert escalation.resume(chain, 1, T0) == escalation.Position(1, T0 + timedelta(minutes=30))
    assert escalation.resume(chain, 0, T0) == escalation.Position(0, T0 + timedelta(minutes=30))
    assert escalation.resume(chain, 2, T0) == escalation.Position(2, T0 + timedelta(hours=1))
    # A repeating step with ``times`` ends, whether it runs out or an acknowledgement lapses.
    bounded = (chain[0], EscalationStep(after=1800, to="duty_phone", every=3600, times=3))
    taken = steps_taken(bounded, T0 + timedelta(days=2))
    assert [to for _, to in taken] == ["gp", "duty_phone", "duty_phone", "duty_phone"]
    assert escalation.resume(bounded, 3, T0) == escalation.Position(3, T0 + timedelta(hours=1))
    assert escalation.resume(bounded, 4, T0) == escalation.Position(4, None)
    # A chain that has ended stays ended.
    once = (EscalationStep(after=3600, to="gp"),)
    assert escalation.take(once, 0, T0) == (once[0], escalation.Position(1, None))
    assert escalation.resume(once, 1, T0) == escalation.Position(1, None)
    assert escalation.start((), T0) == escalation.Position(0, None)
