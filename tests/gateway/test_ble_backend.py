"""The gateway's choice of Bluetooth stack: by name through the entry points, bluez by default."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from gateway.ble import backend as backends
from gateway.ble.backend import ENTRY_POINT_GROUP, BackendUnavailable, choose_backend
from gateway.ble.bluez import PlatformBackend
from gateway.devices.recovery import CommandAdapterControl


def test_no_name_and_no_transport_is_bleaks_platform_backend() -> None:
    for backend in (choose_backend(None, None), choose_backend("bluez", None)):
        assert isinstance(backend, PlatformBackend)
        assert backend.scanner is None and backend.client is None  # bleak picks BlueZ itself
        assert isinstance(backend.adapter, CommandAdapterControl)  # bluetoothctl, on Linux


def test_bluez_refuses_a_transport() -> None:
    with pytest.raises(BackendUnavailable, match="bluez backend takes no transport"):
        choose_backend("bluez", "usb:0")


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(BackendUnavailable, match=r"no BLE backend named 'hci'.*bluez, bumble"):
        choose_backend("hci", None)


def test_a_backend_whose_package_is_missing_names_its_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    missing = EntryPoint("bumble", "no_such_bluetooth_stack.backend:make", ENTRY_POINT_GROUP)
    monkeypatch.setattr(backends, "entry_points", lambda group: [missing])
    with pytest.raises(BackendUnavailable) as unavailable:
        choose_backend(None, "usb:0")
    assert str(unavailable.value) == (
        "the 'bumble' BLE backend needs no_such_bluetooth_stack, which is not installed: "
        'pip install "telemon[bumble]"'
    )
