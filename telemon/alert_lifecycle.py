"""The words of the alert lifecycle: the states an episode or a finding is in, and what a person
can do to an episode.

The alerts engine writes them, the dashboard shows them and lets people act, and the store's
CHECK constraints spell the same states (``telemon/store/migrations``). Which transitions are
allowed between them is the alerts' own business (``alerts.lifecycle``, the one writer).
"""

from __future__ import annotations

from typing import Literal

AlertState = Literal["open", "acknowledged", "escalated", "resolved"]
# The states in which an episode still waits on people.
ACTIVE_STATES: tuple[AlertState, ...] = ("open", "acknowledged", "escalated")
# A finding is only ever open or resolved: acknowledging and escalating belong to its episode.
FindingState = Literal["open", "resolved"]

PersonAction = Literal["claim", "outcome", "acknowledge", "escalate", "resolve"]
