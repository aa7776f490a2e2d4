"""One ingest worker for the benchmark: the real IngestService, recording each commit.

Run by bench/ingest.py as ``python -m bench._ingest_worker``, so that the publisher does not
share its interpreter. Writes ``{"ready": port}`` to the status file once subscribed and, on
SIGTERM, the per-message (sent_at, committed_at, observations) records and the CPU it used.
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
    records: list[tuple[float, float, int]] = []

    def on_commit(batch: CommittedBatch) -> None:
        for delivery in batch.deliveries:
            message = delivery.message
            if isinstance(message, ObservationMessage) and message.decoded.sent_at:
                sent: datetime = message.decoded.sent_at
                records.append(
                    (sent.timestamp(), batch.committed_at, len(message.decoded.observations))
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
                "records": records,
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
