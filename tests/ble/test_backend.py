"""Backend selection, and the same backend driving a controller through an HCI transport."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakBluetoothNotAvailableError, BleakBluetoothNotAvailableReason
from bumble.controller import Controller
from bumble.link import LocalLink
from bumble.transport.tcp_server import open_tcp_server_transport_with_socket

from firmware_sim.ble import (
    IN_PROCESS,
    TRANSPORT_ENV_VAR,
    BumbleBackend,
    BumbleClient,
    BumbleScanner,
    bumble_backend,
    get_central,
    in_process_link,
    select_backend,
)
from firmware_sim.ble.radio import close_central
from gateway.ble.backend import choose_backend

from .peripherals import BATTERY_LEVEL

TIMEOUT = 5.0


def test_environment_else_the_in_process_link(monkeypatch: pytest.MonkeyPatch) -> None:
    for environment in (None, "  ", IN_PROCESS):
        if environment is None:
            monkeypatch.delenv(TRANSPORT_ENV_VAR, raising=False)
        else:
            monkeypatch.setenv(TRANSPORT_ENV_VAR, environment)
        backend = select_backend()
        assert issubclass(backend.scanner, BumbleScanner)
        assert issubclass(backend.client, BumbleClient)
        assert backend.scanner.radio is in_process_link()
        assert backend.client.radio is in_process_link()
        assert backend.adapter.radio is in_process_link()
    # bleak names a custom backend after its class.
    assert BleakScanner(backend=backend.scanner).backend_id == "BumbleScanner"


def test_explicit_transport_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TRANSPORT_ENV_VAR, IN_PROCESS)
    backend = select_backend("usb:0")
    assert backend.scanner.radio == backend.client.radio == backend.adapter.radio == "usb:0"


def test_the_gateway_loads_it_by_name_or_by_transport() -> None:
    # Through the entry point in pyproject.toml, as `telemon gateway run` does.
    by_name = choose_backend("bumble", "usb:0")
    by_transport = choose_backend(None, "usb:0")
    for backend in (by_name, by_transport):
        assert isinstance(backend, BumbleBackend) and backend.scanner.radio == "usb:0"


async def test_adapter_reset_powers_the_central_down(link: LocalLink) -> None:
    backend = bumble_backend(link)
    first = await get_central(link)
    assert await backend.adapter.reset()
    assert first.closed
    assert await get_central(link) is not first


async def test_unreachable_controller_reads_as_bluetooth_not_available(link: LocalLink) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # Bound but never listening: connections are refused.
        backend = select_backend(f"tcp-client:127.0.0.1:{port}")
        with pytest.raises(BleakBluetoothNotAvailableError) as unavailable:
            await BleakScanner(backend=backend.scanner).start()
    assert unavailable.value.reason == BleakBluetoothNotAvailableReason.NO_BLUETOOTH


@pytest_asyncio.fixture(loop_scope="function")
async def controller_over_tcp(link: LocalLink) -> AsyncIterator[str]:
    """A bumble controller on ``link`` serving HCI on a loopback TCP port, like a dongle."""
    # An explicit IPPROTO_TCP lets asyncio set TCP_NODELAY on the accepted socket; without
    # it Nagle holds every second HCI packet back for a delayed ACK (~40 ms per ATT exchange).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    transport = await open_tcp_server_transport_with_socket(sock)
    controller = Controller(
        "tcp-controller", host_source=transport.source, host_sink=transport.sink, link=link
    )
    spec = f"tcp-client:127.0.0.1:{port}"
    try:
        yield spec
    finally:
        await close_central(spec)
        link.remove_controller(controller)
        # bumble's tcp-server transport closes neither its listener nor the accepted socket.
        if (accepted := transport.sink.transport) is not None:
            accepted.close()
        transport.server.close()
        await transport.server.wait_closed()


async def test_transport_spec_drives_a_controller_over_hci(
    controller_over_tcp: str, peripheral
) -> None:
    backend = select_backend(controller_over_tcp)
    scanner_backend, client_backend = backend.scanner, backend.client

    device = await BleakScanner.find_device_by_name(
        "Oxi-1", timeout=TIMEOUT, backend=scanner_backend
    )
    assert device is not None and device.address == peripheral.address
    async with BleakClient(device, backend=client_backend, timeout=TIMEOUT) as client:
        assert await client.read_gatt_char(BATTERY_LEVEL) == bytearray([87])
