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

from gateway.ble import (
    IN_PROCESS,
    TRANSPORT_ENV_VAR,
    BumbleClient,
    BumbleScanner,
    in_process_link,
    select_backend,
)
from gateway.ble.radio import close_central

from .peripherals import BATTERY_LEVEL

TIMEOUT = 5.0


def test_no_transport_means_bleak_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TRANSPORT_ENV_VAR, raising=False)
    assert select_backend() is None
    monkeypatch.setenv(TRANSPORT_ENV_VAR, "  ")
    assert select_backend() is None


def test_environment_selects_the_in_process_link(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TRANSPORT_ENV_VAR, IN_PROCESS)
    backends = select_backend()
    assert backends is not None
    scanner, client = backends
    assert issubclass(scanner, BumbleScanner) and issubclass(client, BumbleClient)
    assert scanner.radio is in_process_link() and client.radio is in_process_link()
    # bleak names a custom backend after its class.
    assert BleakScanner(backend=scanner).backend_id == "BumbleScanner"


def test_explicit_transport_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TRANSPORT_ENV_VAR, IN_PROCESS)
    backends = select_backend("usb:0")
    assert backends is not None
    assert all(backend.radio == "usb:0" for backend in backends)


async def test_unreachable_controller_reads_as_bluetooth_not_available(link: LocalLink) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # Bound but never listening: connections are refused.
        backends = select_backend(f"tcp-client:127.0.0.1:{port}")
        assert backends is not None
        with pytest.raises(BleakBluetoothNotAvailableError) as unavailable:
            await BleakScanner(backend=backends[0]).start()
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
    backends = select_backend(controller_over_tcp)
    assert backends is not None
    scanner_backend, client_backend = backends

    device = await BleakScanner.find_device_by_name(
        "Oxi-1", timeout=TIMEOUT, backend=scanner_backend
    )
    assert device is not None and device.address == peripheral.address
    async with BleakClient(device, backend=client_backend, timeout=TIMEOUT) as client:
        assert await client.read_gatt_char(BATTERY_LEVEL) == bytearray([87])
