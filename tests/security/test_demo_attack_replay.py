"""Issue 15's six attacks, replayed black-box against the README's demo: none may work."""

from __future__ import annotations

from tests.security.replay import demo, replay


def test_no_attack_of_the_replay_works_against_the_demo(tmp_path):
    with demo(tmp_path / "data") as running:
        findings = replay(running.url, running.broker)
    assert [f.number for f in findings] == [1, 2, 3, 4, 5, 6]
    reproduced = [f.line() for f in findings if f.reproduced]
    assert not reproduced, "\n".join(reproduced)
