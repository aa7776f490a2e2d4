"""10,000 malformed MQTT messages through the real broker into the real ingest (issue #9).

Random bytes, wrong JSON types, hostile envelopes, deep nesting, oversized payloads, and
well-formed messages carrying one hostile item between two good ones (huge numbers, NaN,
unicode, lone surrogates, NUL characters, wrong types, nested junk). Every malformed message
must cost exactly one dead letter with a reason, the good items beside a bad one must be stored,
and valid traffic interleaved with it all must keep flowing. Seeded: a failure replays.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ingest.deadletters import STORE_ERROR
from telemon.metrics import METRICS
from telemon.payload import MAX_PAYLOAD_BYTES, RejectReason

# The size by default; TELEMON_FUZZ_MESSAGES runs a larger (or, debugging, smaller) one.
MALFORMED = int(os.environ.get("TELEMON_FUZZ_MESSAGES", "10000"))
CHUNK = 400  # messages published before waiting for ingest: stays under the broker's queue limit
KNOWN_REASONS = {r.value for r in RejectReason}
HOSTILE_STRINGS = (
    "",
    " ",
    "\u0000",
    "P\u0000001",
    "\ud800",
    "\udfff\ud800",
    "💉🩸",
    "é" * 70,
    "x" * 100_000,
    "../../etc/passwd",
    "'; DROP TABLE observations; --",
    "\u202eevil",
    "nan",
    "Infinity",
)
HOSTILE_NUMBERS = (1e308, -1e308, 10**30, -(10**30), 2**63, -1, 0.5, 1e-320)


@dataclass
class Expected:
    messages: list[tuple[str, bytes, int]] = field(default_factory=list)  # with its dead letters
    letters: int = 0  # dead letters the malformed messages must produce
    stored: int = 0  # observations the run must store
    kinds: Counter[str] = field(default_factory=Counter)


class Fuzzer:
    def __init__(self, rng: random.Random, patient) -> None:
        self.rng = rng
        self.patient = patient
        self.seq = 0
        self.start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)

    def good_item(self) -> dict:
        self.seq += 1
        metric = METRICS["spo2"]
        return {
            "seq": self.seq,
            "device_id": "AA:BB:CC:00:00:01",
            "patient_id": self.patient.patient_code,
            "metric": metric.key,
            "value": float(self.rng.randint(90, 99)),
            "unit": metric.unit,
            "measured_at": (self.start + timedelta(seconds=self.seq))
            .isoformat()
            .replace("+00:00", "Z"),
        }

    def envelope(self, items: list) -> dict:
        return {"v": 1, "gateway_id": self.patient.gateway_code, "observations": items}

    def hostile_value(self):
        rng = self.rng
        return rng.choice(
            (
                rng.choice(HOSTILE_STRINGS),
                rng.choice(HOSTILE_NUMBERS),
                None,
                True,
                [],
                {"nested": [1, {"deeper": None}]},
                [[[[[[1]]]]]],
                1000 + rng.random() * 10 ** rng.randint(0, 30),  # beyond every plausible range
            )
        )

    def bad_item(self) -> dict:
        """A good item with one field made hostile, a field removed, or a field added."""
        item = self.good_item()
        self.seq -= 1  # the bad item must not use up a seq a good item could collide with
        item["seq"] = 10**9 + self.seq  # and never collides with a good one if it slips through
        action = self.rng.random()
        name = self.rng.choice(sorted(item))
        if action < 0.8:
            item[name] = self.hostile_value()
            # A few hostile values are valid for some fields (an empty flag list...): force one
            # that is not, so each bad item is rejected for certain.
            if name == "device_id" and isinstance(item[name], str) and item[name].isalnum():
                item[name] = "\u0000" + item[name]
        elif action < 0.9:
            del item[name]
        else:
            item[self.rng.choice(HOSTILE_STRINGS[3:8]) or "extra"] = self.hostile_value()
        return item

    def malformed(self) -> tuple[bytes, str, int]:
        """(payload, kind, good observations it carries)."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.15:
            return rng.randbytes(rng.randint(0, 400)), "random_bytes", 0
        if roll < 0.25:
            scalar = rng.choice([0, -1, 1.5, "text", None, True, [], [1, 2], {}, {"v": 1}])
            return json.dumps(scalar).encode(), "wrong_json_type", 0
        if roll < 0.35:
            body = self.envelope([self.good_item()])
            self.seq -= 1
            body["observations"][0]["seq"] += 10**9  # never collides if it slips through
            key = rng.choice(["v", "gateway_id", "observations", "sent_at", "extra"])
            body[key] = self.hostile_value() if key != "gateway_id" else "gw-someone-else"
            if body[key] is None and key == "sent_at":  # the one hostile value that is valid
                body[key] = "yesterday"

            return json.dumps(body).encode(), "hostile_envelope", 0
        if roll < 0.40:
            depth = rng.randint(200, 20_000)
            return b'{"v":1,"observations":' + b"[" * depth + b"]" * depth + b"}", "deep", 0
        if roll < 0.45:
            item = json.dumps(self.good_item()).encode()
            self.seq -= 1
            literal = rng.choice([b"NaN", b"Infinity", b"-Infinity"])
            item = item.replace(b'"value": ', b'"value": ' + literal + b', "was": ')
            return (
                b'{"v":1,"gateway_id":"%s","observations":[%s]}'
                % (
                    self.patient.gateway_code.encode(),
                    item,
                ),
                "non_json_number",
                0,
            )
        if self.seq % 2000 == 0:
            filler = json.dumps(self.envelope(["x" * 1000] * (MAX_PAYLOAD_BYTES // 1000 + 1)))
            return filler.encode(), "oversized", 0
        items = [self.good_item(), self.bad_item(), self.good_item()]
        return json.dumps(self.envelope(items)).encode(), "hostile_item", 2

    def valid(self) -> bytes:
        return json.dumps(self.envelope([self.good_item() for _ in range(5)])).encode()


def build(patient, seed: int = 20261123) -> Expected:
    fuzzer = Fuzzer(random.Random(seed), patient)
    expected = Expected()
    for n in range(MALFORMED):
        payload, kind, good = fuzzer.malformed()
        expected.messages.append((patient.obs_topic, payload, 1))
        expected.letters += 1
        expected.stored += good
        expected.kinds[kind] += 1
        if n % 10 == 0:  # valid traffic alongside
            expected.messages.append((patient.obs_topic, fuzzer.valid(), 0))
            expected.stored += 5
            expected.kinds["valid"] += 1
    return expected


def test_ten_thousand_malformed_messages_each_cost_one_dead_letter_and_nothing_else(
    db, patient, start_ingest, broker, wait_for
):
    expected = build(patient)
    service = start_ingest(ingest_batch_size=2000)

    def letters() -> int:
        return db.execute(
            "SELECT count(*) FROM dead_letters WHERE topic = %s", (patient.obs_topic,)
        ).fetchone()[0]

    def stored() -> int:
        return db.execute(
            "SELECT count(*) FROM observations WHERE patient_id = %s", (patient.patient_id,)
        ).fetchone()[0]

    sent_letters = 0
    for start in range(0, len(expected.messages), CHUNK):
        chunk = expected.messages[start : start + CHUNK]
        broker.publish_all([(t, p) for t, p, _ in chunk])
        sent_letters += sum(n for _, _, n in chunk)
        # Wait for the chunk to be written before the next: a QoS 1 subscriber's queue at the
        # broker is bounded, and what overflows it is dropped, which is not what is tested.
        wait_for(lambda n=sent_letters: letters() >= n, timeout=120)

    wait_for(lambda: letters() >= expected.letters and stored() >= expected.stored, timeout=120)
    reasons = Counter(
        dict(
            db.execute(
                "SELECT reason, count(*) FROM dead_letters WHERE topic = %s GROUP BY reason",
                (patient.obs_topic,),
            ).fetchall()
        )
    )
    empty_detail = db.execute(
        "SELECT count(*) FROM dead_letters WHERE topic = %s AND detail = ''", (patient.obs_topic,)
    ).fetchone()[0]
    sent_stored = stored()
    print(
        f"\ningest fuzz: {len(expected.messages)} messages ({dict(expected.kinds)}); "
        f"dead letters {letters()} (expected {expected.letters}) by reason {dict(reasons)}; "
        f"observations stored {sent_stored} (expected {expected.stored}); "
        f"service healthy: {service.health()[0]}"
    )
    assert letters() == expected.letters
    assert sent_stored == expected.stored
    assert set(reasons) <= KNOWN_REASONS, set(reasons) - KNOWN_REASONS
    assert STORE_ERROR not in reasons  # the database refused nothing validation let through
    assert empty_detail == 0
    assert service.health()[0]
    assert service.subscriber.is_connected
