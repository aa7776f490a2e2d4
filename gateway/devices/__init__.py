"""The gateway's device side: scan for paired devices, connect, record their readings.

See docs/gateway.md. ``DeviceManager`` is the entry point; the decisions it makes (backoff,
which RACP request, time stamps, watchdog) are pure functions in their own modules.
"""

from gateway.devices.backoff import Backoff
from gateway.devices.discovery import FoundDevice, discover_health_devices
from gateway.devices.glucose_sync import ContextJoiner, SyncStore, next_request
from gateway.devices.manager import DeviceManager, ManagerOptions, table_problem
from gateway.devices.profiles import PROFILES, SessionProfile, kind_for_services
from gateway.devices.recovery import (
    AdapterControl,
    CommandAdapterControl,
    NoAdapterControl,
    Recoveries,
    WatchdogPolicy,
)
from gateway.devices.rejected import RejectedLog
from gateway.devices.session import SessionOptions
from gateway.devices.state import DeviceState

__all__ = [
    "PROFILES",
    "AdapterControl",
    "Backoff",
    "CommandAdapterControl",
    "ContextJoiner",
    "DeviceManager",
    "DeviceState",
    "FoundDevice",
    "ManagerOptions",
    "NoAdapterControl",
    "Recoveries",
    "RejectedLog",
    "SessionOptions",
    "SessionProfile",
    "SyncStore",
    "WatchdogPolicy",
    "discover_health_devices",
    "kind_for_services",
    "next_request",
    "table_problem",
]
