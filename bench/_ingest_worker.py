"""One ingest worker for the benchmark: the real IngestService, recording each commit.

Run by bench/ingest.py as ``python -m bench._ingest_worker``, so that the publisher does not
share its interpreter. Writes ``{"ready": port}`` to the status file once subscribed and, on
SIGTERM, the per-message (sent_at, committed_at, observations, gateway, first seq) records and
the CPU it used. The gateway and first seq name a message again when it is delivered twice.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
from datetime import datetime
from pathlib import Path

from ingest.inbound import ObservationMessage
from ingest.service import CommittedBatch, IngestService
from telemon.config import Settings


def cpu_seconds() -> float:
    """User and system CPU this process has used so far, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(status_file: str, client_id: str) -> None:
    logging.basicConfig(level=logging.WARNING)
    # Per commit: when, and each observation message's (sent_at, observations, gateway, first
    # seq). Kept as they come and converted at the end, so that recording costs the measured
    # worker little CPU.
    commits: list[tuple[float, list[tuple[datetime | None, int, str, int | None]]]] = []

    def on_commit(batch: CommittedBatch) -> None:
        commits.append(
            (
                batch.committed_at,
                [
                    (
                        d.message.decoded.sent_at,
                        len(d.message.decoded.observations),
                        d.message.decoded.gateway_id,
                        d.message.decoded.observations[0].seq
                        if d.message.decoded.observations
                        else None,
                    )
                    for d in batch.deliveries
                    if isinstance(d.message, ObservationMessage)
                ],
            )
        )

    service = IngestService(Settings(), client_id=client_id, on_commit=on_commit)
    path = Path(status_file)
    original_start = service.start
    cpu_at_start = 0.0

    def start_and_announce() -> None:
        nonlocal cpu_at_start
        original_start()
        cpu_at_start = cpu_seconds()
        path.write_text(json.dumps({"ready": service.metrics_port}))

    service.start = start_and_announce  # type: ignore[method-assign]
    service.run_forever()
    path.write_text(
        json.dumps(
            {
                "records": [
                    (sent.timestamp(), committed_at, observations, gateway, first_seq)
                    for committed_at, messages in commits
                    for sent, observations, gateway, first_seq in messages
                    if sent is not None
                ],
                "stored": service.observations_stored,
                "duplicates": service.duplicates_ignored,
                "rejected": service.messages_rejected,
                # From subscribed to stopped: the run's work, not the imports and connections.
                "cpu_s": cpu_seconds() - cpu_at_start,
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:3])
