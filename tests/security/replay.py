"""A black-box replay of issue 15's six attacks against a running ``telemon demo``.

Only what an attacker on the same machine has is used: the dashboard's URL, the broker's
address the demo prints, and the demo logins the README publishes. Each probe answers whether
the attack still works, with the evidence; none imports the product.

    python -m tests.security.replay            # starts a demo of its own in a temporary directory
    python -m tests.security.replay --url http://127.0.0.1:8000 --broker 127.0.0.1:1883

The probes run in an order that keeps them independent: the ones that need a signed-in user
first, the password spray (which may throttle this address for a quarter of an hour) last.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt

DEMO_PASSWORD = "telemon-demo"  # the README's demo logins
NURSE = "nurse.greco"
LOCKED_VICTIM = "admin"  # locked by the timing probe; nothing later signs in as admin


@dataclass(frozen=True, slots=True)
class Finding:
    number: int
    title: str
    reproduced: bool
    evidence: str

    def line(self) -> str:
        verdict = "REPRODUCED" if self.reproduced else "not reproduced"
        return f"finding {self.number} ({self.title}): {verdict}: {self.evidence}"


def _csrf(client: httpx.Client) -> str:
    page = client.get("/login")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, "the login page has no CSRF token"
    return match.group(1)


def _login(
    client: httpx.Client, username: str, password: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    token = _csrf(client)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        headers=headers or {},
    )


@contextmanager
def _signed_in(url: str, username: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=60) as client:
        response = _login(client, username, DEMO_PASSWORD)
        assert response.status_code == 303, f"{username} could not sign in: {response.status_code}"
        yield client


def forged_delivery_report(url: str) -> Finding:
    """1. An unsigned Twilio status callback marks an SMS delivered."""
    answers = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for notification in range(1, 6):
            response = client.post(
                f"/sms/status?notification={notification}",
                data={"MessageSid": "SMforged000", "MessageStatus": "delivered"},
            )
            answers.append(response.status_code)
    accepted = [code for code in answers if code < 300]
    return Finding(
        1,
        "forged SMS delivery reports",
        bool(accepted),
        f"unsigned reports answered {answers}",
    )


def _forged_address(n: int) -> dict[str, str]:
    """An X-Forwarded-For header a proxy never wrote: garbage, or a fresh documentation address."""
    forged = ("unknown", f"203.0.113.{n % 250 + 1}", "not-an-address", f"198.51.100.{n % 250 + 1}")
    return {"x-forwarded-for": forged[n % len(forged)]}


def password_spray(url: str, attempts: int = 300) -> Finding:
    """2. Failed logins under forged X-Forwarded-For values never meet the address throttle."""
    with httpx.Client(base_url=url, timeout=60) as client:
        for n in range(attempts):
            response = _login(
                client,
                f"spray-{uuid.uuid4().hex[:8]}",
                "Winter2026!",
                headers=_forged_address(n),
            )
            if response.status_code == 429:
                return Finding(
                    2,
                    "throttle bypass by X-Forwarded-For",
                    False,
                    f"throttled after {n + 1} failed logins under forged addresses",
                )
    return Finding(
        2,
        "throttle bypass by X-Forwarded-For",
        True,
        f"{attempts} failed logins under forged X-Forwarded-For values, never a 429",
    )


def _latencies(client: httpx.Client, path: str, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, f"{path} answered {response.status_code}"
    return times


def login_stall(url: str, parallel: int = 40) -> Finding:
    """3. Parallel failed logins starve a signed-in user's requests."""
    with _signed_in(url, NURSE) as nurse:
        baseline = statistics.median(_latencies(nurse, "/api/me", 10))

        def fail(n: int) -> int:
            with httpx.Client(base_url=url, timeout=120) as attacker:
                return _login(
                    attacker,
                    f"stall-{n}-{uuid.uuid4().hex[:6]}",
                    "x" * 12,
                    headers={"x-forwarded-for": "unknown"},
                ).status_code

        with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
            futures = [pool.submit(fail, n) for n in range(parallel)]
            time.sleep(0.5)  # the attack is under way
            during = _latencies(nurse, "/api/me", 10)
            codes = sorted({f.result() for f in futures})
    worst = max(during)
    # The issue saw ~15 ms become ~5 s. A second, and ten times the quiet median, is a stall.
    stalled = worst > 1.0 and worst > 10 * baseline
    return Finding(
        3,
        "login stall",
        stalled,
        f"/api/me median {baseline * 1000:.0f} ms quiet, worst {worst * 1000:.0f} ms during "
        f"{parallel} parallel failed logins (answered {codes})",
    )


def username_timing(url: str, samples: int = 9) -> Finding:
    """4. A locked account answers faster than an unknown username."""
    # Under an address of its own if the server believes the header, as the prober was:
    # the earlier probes' failures must not throttle every answer alike.
    fresh = {"x-forwarded-for": "192.0.2.44"}
    with httpx.Client(base_url=url, timeout=60, headers=fresh) as client:
        for _ in range(6):  # more than the lockout's five
            _login(client, LOCKED_VICTIM, "wrong-password-1")

        def timed(username: str) -> float:
            token = _csrf(client)
            started = time.perf_counter()
            client.post(
                "/login",
                data={"username": username, "password": "wrong-password-2", "csrf_token": token},
            )
            return time.perf_counter() - started

        locked, unknown = [], []
        for n in range(samples):
            locked.append(timed(LOCKED_VICTIM))
            unknown.append(timed(f"nobody-{n}-{uuid.uuid4().hex[:6]}"))
    locked_median, unknown_median = statistics.median(locked), statistics.median(unknown)
    ratio = locked_median / unknown_median
    return Finding(
        4,
        "username timing",
        ratio < 0.6,
        f"locked account median {locked_median * 1000:.0f} ms, unknown username "
        f"{unknown_median * 1000:.0f} ms (ratio {ratio:.2f})",
    )


def fhir_far_dates(url: str) -> Finding:
    """5. FHIR searches with far dates crash the server."""
    answers: dict[str, int | str] = {}
    with _signed_in(url, NURSE) as nurse:
        for date in ("9999-12-31", "le9999-12-31", "ge0001-01-01", "gt9999-12-31T23:59:59Z"):
            try:
                response = nurse.get("/fhir/Observation", params={"patient": "1", "date": date})
            except httpx.TransportError as exc:  # the server dropped the connection
                answers[date] = type(exc).__name__
            else:
                answers[date] = response.status_code
    crashed = {d: code for d, code in answers.items() if not isinstance(code, int) or code >= 500}
    return Finding(5, "FHIR far dates", bool(crashed), f"answers {answers}")


def _broker_accepts(host: str, port: int, username: str | None, password: str | None) -> str:
    """The CONNACK's reason code, or why there was none."""
    answer: list[str] = []
    connected = threading.Event()

    def on_connect(client, userdata, flags, reason_code, properties=None) -> None:
        answer.append("accepted" if not reason_code.is_failure else str(reason_code))
        connected.set()

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"intruder-{uuid.uuid4().hex[:6]}",
        protocol=mqtt.MQTTv311,
    )
    if username is not None:
        client.username_pw_set(username, password)
    client.on_connect = on_connect
    try:
        client.connect(host, port, keepalive=10)
    except OSError as exc:
        return f"refused ({exc})"
    client.loop_start()
    try:
        if not connected.wait(10):
            return "no CONNACK"
    finally:
        client.loop_stop()
        client.disconnect()
    return answer[0]


def open_broker(host: str, port: int) -> Finding:
    """6. The demo's broker takes clients without a password of its own."""
    guesses = {
        "anonymous": (None, None),
        "gateway id, no password": ("gw-0001", ""),
        "ingest with the demo password": ("ingest", DEMO_PASSWORD),
    }
    answers = {name: _broker_accepts(host, port, *guess) for name, guess in guesses.items()}
    return Finding(
        6,
        "open demo broker",
        "accepted" in answers.values(),
        f"CONNECT answered {answers}",
    )


def replay(url: str, broker: tuple[str, int]) -> list[Finding]:
    probes: list[Callable[[], Finding]] = [
        lambda: forged_delivery_report(url),
        lambda: fhir_far_dates(url),
        lambda: open_broker(*broker),
        lambda: login_stall(url),
        lambda: username_timing(url),
        lambda: password_spray(url),
    ]
    return sorted((probe() for probe in probes), key=lambda f: f.number)


@dataclass(frozen=True, slots=True)
class RunningDemo:
    url: str
    broker: tuple[str, int]


@contextmanager
def demo(data_dir: Path, *, patients: int = 4) -> Iterator[RunningDemo]:
    """``telemon demo`` on embedded defaults, as the README starts it."""
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from console.cli import main; main()",
            "demo",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
            "--patients",
            str(patients),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("TELEMON_")},
    )
    assert process.stdout is not None
    broker = None
    seen = []
    try:
        for line in process.stdout:
            seen.append(line)
            found = re.search(r"mqtt://(?:[^@\s/]*@)?([\w.-]+):(\d+)", line)
            if found and broker is None:
                broker = (found.group(1), int(found.group(2)))
            if f"http://127.0.0.1:{port}/" in line:
                break
        else:
            raise RuntimeError("the demo never printed its URL:\n" + "".join(seen))
        assert broker is not None, "the demo never printed its broker:\n" + "".join(seen)
        yield RunningDemo(f"http://127.0.0.1:{port}", broker)
    finally:
        process.send_signal(2)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running demo's dashboard (default: start one)")
    parser.add_argument("--broker", help="host:port of that demo's MQTT broker")
    args = parser.parse_args()
    if args.url:
        host, _, port = (args.broker or "127.0.0.1:1883").rpartition(":")
        findings = replay(args.url.rstrip("/"), (host, int(port)))
    else:
        with tempfile.TemporaryDirectory() as tmp, demo(Path(tmp) / "data") as running:
            findings = replay(running.url, running.broker)
    for finding in findings:
        print(finding.line())
    reproduced = sum(f.reproduced for f in findings)
    print(f"replay: {reproduced} of {len(findings)} findings reproduced")
    return 1 if reproduced else 0


if __name__ == "__main__":
    raise SystemExit(main())
