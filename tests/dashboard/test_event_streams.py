"""Live event streams end with the session and are capped per person (issue 15).

Against a real uvicorn (the TestClient does not stream): a logged-out or disabled user's stream
ran on for up to 60 s, and one account could hold any number of streams, each polling the
database (150 of them made every page 5-10 times slower).
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest

from console.embedded import free_port
from dashboard.app import create_app
from dashboard.server import BackgroundServer
from dashboard.streams import MAX_STREAMS_PER_USER, StreamRegistry
from tests.dashboard.conftest import World
from tests.dashboard.support import login

# Generous: the stream rechecks its session at every poll (0.2 s here, 1 s by default).
ENDS_WITHIN = 5.0


@dataclass(frozen=True)
class Dashboard:
    url: str
    streams: StreamRegistry  # the running app's, to see what it holds


@pytest.fixture
def server(database_url: str, world: World) -> Iterator[Dashboard]:
    port = free_port()
    app = create_app(
        database_url,
        public_url=f"http://127.0.0.1:{port}",
        language="en",
        twilio_auth_token="",
        sse_interval=0.2,
    )
    server = BackgroundServer(app, "127.0.0.1", port)
    server.start()
    yield Dashboard(server.url, app.state.streams)
    server.stop()


class Stream:
    """``GET /events`` read in a thread of its own; the event names arrive in ``events``."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.events: queue.Queue[str] = queue.Queue()
        self.data: list[dict[str, object]] = []  # each event's data, in order
        self.ended = threading.Event()
        self.status: int | None = None
        self._socket: socket.socket | None = None
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            with self.client.stream("GET", "/events", timeout=httpx.Timeout(10, read=30)) as r:
                self.status = r.status_code
                self._socket = r.extensions["network_stream"].get_extra_info("socket")
                self._connected.set()
                name = None
                for line in r.iter_lines():
                    # Every event has its data line: the name is announced once both came.
                    if line.startswith("event: "):
                        name = line.removeprefix("event: ")
                    elif line.startswith("data: ") and name is not None:
                        self.data.append(json.loads(line.removeprefix("data: ")))
                        self.events.put(name)
                        name = None
        except httpx.HTTPError:
            pass  # the test hung up
        finally:
            self._connected.set()
            self.ended.set()

    def next_event(self, timeout: float = ENDS_WITHIN) -> str:
        return self.events.get(timeout=timeout)

    def close(self) -> None:
        """Hang up, as a closed tab does: the server sees the connection end."""
        self._connected.wait(10)
        if self._socket is not None and not self.ended.is_set():
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)  # unblocks the reading thread
        self._thread.join(10)
        self.client.close()


def signed_in(server: Dashboard, username: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=server.url, timeout=10)
    return client, login(client, username)


def open_stream(server: Dashboard, client: httpx.Client) -> Stream:
    """A stream in a client of its own sharing ``client``'s session, once it is running."""
    own = httpx.Client(base_url=server.url, cookies=client.cookies, timeout=10)
    stream = Stream(own)
    assert stream.next_event() == "alerts"  # the first fingerprint: the stream is live
    return stream


def test_logging_out_ends_the_sessions_stream_within_seconds(server: Dashboard) -> None:
    nurse, csrf = signed_in(server, "nurse.greco")
    stream = open_stream(server, nurse)

    nurse.post("/logout", data={"csrf_token": csrf})
    started = time.monotonic()

    assert stream.next_event() == "logout"
    assert stream.ended.wait(ENDS_WITHIN)
    assert time.monotonic() - started < ENDS_WITHIN
    stream.close()
    nurse.close()


def test_disabling_a_user_ends_their_streams_within_seconds(
    server: Dashboard, world: World
) -> None:
    nurse, _ = signed_in(server, "nurse.greco")
    streams = [open_stream(server, nurse) for _ in range(2)]
    admin, csrf = signed_in(server, "admin")

    disabled = admin.patch(
        f"/api/admin/staff/{world.staff['nurse']}",
        headers={"x-csrf-token": csrf},
        json={"active": False},
    )
    started = time.monotonic()

    assert disabled.status_code == 200, disabled.text
    for stream in streams:
        assert stream.next_event() == "logout"
        assert stream.ended.wait(ENDS_WITHIN)
    assert time.monotonic() - started < ENDS_WITHIN
    for client in (*streams, nurse, admin):
        client.close()


def test_a_further_stream_ends_the_same_persons_oldest(server: Dashboard, world: World) -> None:
    # Two sessions of the same nurse (two browsers): the cap is per person, not per session.
    first_session, _ = signed_in(server, "nurse.greco")
    second_session, _ = signed_in(server, "nurse.greco")
    gp, _ = signed_in(server, "dr.rossi")
    gp_stream = open_stream(server, gp)
    streams = [
        open_stream(server, session)
        for session in [first_session, second_session] * (MAX_STREAMS_PER_USER // 2)
    ]
    assert len(streams) == MAX_STREAMS_PER_USER

    newest = open_stream(server, second_session)

    oldest, *others = streams
    assert oldest.next_event() == "superseded"
    assert oldest.ended.wait(ENDS_WITHIN)
    for stream in (*others, newest, gp_stream):
        assert not stream.ended.is_set()
    registry = server.streams
    assert registry.count(world.staff["nurse"]) == MAX_STREAMS_PER_USER
    assert registry.count(world.staff["gp"]) == 1

    # Closed tabs free their places: nothing is left registered once they have gone.
    for stream in (*others, newest, gp_stream):
        stream.close()
    deadline = time.monotonic() + ENDS_WITHIN
    while registry.count(world.staff["nurse"]) + registry.count(world.staff["gp"]) > 0:
        assert time.monotonic() < deadline, "closed streams are still registered"
        time.sleep(0.05)
    for client in (oldest, first_session, second_session, gp):
        client.close()


def test_each_stream_counts_only_its_readers_episodes(
    server: Dashboard, world: World, database_url: str
) -> None:
    """Two organisations, two centres: a stream counts the open episodes its reader may see,
    and says nothing else of them (no patient, no finding), so what a patient hid changes
    nothing in it; the fragment the page then fetches is filtered as every page is
    (test_authz.py, the oscuramento matrix)."""
    with psycopg.connect(database_url) as conn:
        open_red = {
            key: conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE severity = 2) FROM episodes "
                "WHERE patient_id = %s AND state <> 'resolved'",
                (patient,),
            ).fetchone()
            for key, patient in world.patients.items()
        }
    sees = {
        "dr.rossi": ["own"],
        "nurse.greco": ["own", "other_gp"],
        "nurse.conti": ["far"],
        "dr.verdi": ["org_b"],
        "nurse.galli": ["org_b"],
    }
    gp, csrf = signed_in(server, "dr.rossi")
    hidden = gp.post(
        f"/api/patients/{world.patients['own']}/restrictions",
        headers={"x-csrf-token": csrf},
        json={"kind": "metric_category", "category": "spo2", "requested_on": "2024-01-01"},
    )
    assert hidden.status_code == 201, hidden.text
    for username, keys in sees.items():
        client, _ = signed_in(server, username)
        stream = open_stream(server, client)
        expected = {
            "open": sum(open_red[k][0] for k in keys),
            "red": sum(open_red[k][1] for k in keys),
        }
        assert stream.data[-1] == expected, (username, stream.data)
        stream.close()
        client.close()
    gp.close()
