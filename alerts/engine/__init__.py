"""The alerts engine service: load readings, evaluate protocols, keep alerts, send SMS."""

from alerts.engine.clock import Clock, ManualClock, system_clock
from alerts.engine.engine import Engine, EvaluationReport
from alerts.engine.service import HEALTH_PORT, AlertsService

__all__ = [
    "HEALTH_PORT",
    "AlertsService",
    "Clock",
    "Engine",
    "EvaluationReport",
    "ManualClock",
    "system_clock",
]
