"""A controller on a bumble link, reachable from another process as an HCI controller over TCP.

Why: the simulated devices and the gateway can then live in two processes, as a real gateway
and its devices do, and the gateway's process holds only its own host stack: it drives this
controller through bumble's ``tcp-client`` transport exactly as it would a USB dongle
(``telemon gateway run --transport tcp-client:127.0.0.1:PORT``), while the devices' GATT
servers and the link-layer simulation run elsewhere.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from bumble.controller import Controller
from bumble.link import LocalLink
from bumble.transport import Transport
from bumble.transport.tcp_server import open_tcp_server_transport_with_socket

from .radio import link_controller

__all__ = ["HciServer", "serve_link_over_tcp"]


@dataclass(slots=True)
class HciServer:
    """One controller on ``link`` serving HCI to whoever connects to ``port`` on loopback."""

    link: LocalLink
    host: str
    port: int
    _transport: Transport
    _controller: Controller

    @property
    def transport_spec(self) -> str:
        """What the gateway's bumble backend is given to reach this controller."""
        return f"tcp-client:{self.host}:{self.port}"

    async def close(self) -> None:
        self.link.remove_controller(self._controller)
        # bumble's tcp-server transport closes neither its listener nor the accepted socket.
        accepted = getattr(self._transport.sink, "transport", None)
        if accepted is not None:
            accepted.close()
        server = self._transport.server  # type: ignore[attr-defined]
        server.close()
        await server.wait_closed()


async def serve_link_over_tcp(link: LocalLink, host: str = "127.0.0.1", port: int = 0) -> HciServer:
    """Listen on ``host``:``port`` (0: any free port) with a controller on ``link``."""
    # An explicit IPPROTO_TCP lets asyncio set TCP_NODELAY on the accepted socket; without it
    # Nagle holds every second HCI packet back for a delayed ACK (~40 ms per ATT exchange).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    transport = await open_tcp_server_transport_with_socket(sock)
    controller = link_controller(link, "hci-over-tcp", transport.source, transport.sink)
    return HciServer(link, host, sock.getsockname()[1], transport, controller)
