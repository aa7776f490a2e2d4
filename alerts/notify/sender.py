"""Sending the notification rows: at most once each, whatever Twilio or the process does.

Each row goes through: claim ('sending', committed, advisory-locked), then one call to Twilio
outside any transaction, then its outcome in one transaction with an episode event:

* accepted: 'sent' with the SID;
* 4xx (e.g. 21211, invalid number): 'failed' at once, it would fail the same way again;
* 5xx, 429, timeout, connection error: back to 'pending' with exponential backoff, 'failed'
  after ``RetryPolicy.max_attempts``. The message may exist at Twilio all the same (a timeout
  after Twilio accepted it), so every retry first asks Twilio for a recent message with the same
  recipient and body, and adopts it rather than sending again.

A row found 'sending' with its advisory lock free belongs to a sender that died between the
commit and Twilio's answer. It is never sent again: the sender asks Twilio for the message and
records it as sent if found; if Twilio, asked, has no such message and the row has lost its
point (the episode resolved, or the reminded patient measured meanwhile), it is cancelled;
otherwise the row is marked 'failed' with 'outcome unknown after restart' for a person to check.
A later status callback carrying its id may still settle it.
The residual risk is the one no Twilio client escapes: a request Twilio accepts only after our
timeout, backoff and look-up have all passed would be followed by a second message.

A row whose episode was resolved, or acknowledged when the SMS only asked for that, or that a
later row superseded, or a patient's reminder whose patient was discharged, opted out or
measured meanwhile, is cancelled instead (``alerts.notify.cancel``): at each round for the
rows waiting, and once more in the claim, on the episode's (or patient's) state locked until the
claim commits.

Without Twilio credentials (the demo) rows go to the outbox: status 'outboxed', nothing sent.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from alerts.notify import store
from alerts.notify.callbacks import status_callback_url
from alerts.notify.cancel import cancel, cancel_moot_notifications, moot
from alerts.notify.enqueue import DUE_CHANNEL
from alerts.notify.store import Claim
from alerts.notify.twilio_gateway import (
    AcceptedMessage,
    PermanentSendError,
    RetryableSendError,
    SendError,
    SmsGateway,
    TwilioConfig,
    TwilioGateway,
)
from telemon.config import Settings

OUTCOME_UNKNOWN = "outcome unknown after restart"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5
    first_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(minutes=15)

    def delay_after(self, attempt: int) -> timedelta:
        doubled: int = 2 ** (attempt - 1)
        return min(self.first_delay * doubled, self.max_delay)


@dataclass(slots=True)
class SendReport:
    sent: int = 0
    reconciled: int = 0  # found at Twilio after a timeout or a crash, not sent again
    outboxed: int = 0
    retrying: int = 0
    failed: int = 0
    outcome_unknown: int = 0
    cancelled: int = 0  # pointless by the time they were due, never sent


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Sender:
    """Works through due notification rows on its own connection (autocommit, not shared)."""

    def __init__(
        self,
        conn: psycopg.Connection,
        gateway: SmsGateway | None,
        *,
        public_url: str,
        policy: RetryPolicy = RetryPolicy(),
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if not conn.autocommit:
            raise ValueError("the sender needs an autocommit connection of its own")
        self.conn = conn
        self.gateway = gateway
        self.public_url = public_url
        self.policy = policy
        self.clock = clock

    @classmethod
    def from_settings(
        cls, conn: psycopg.Connection, settings: Settings, *, timeout: float = 10.0
    ) -> Sender:
        config = TwilioConfig.from_settings(settings, timeout=timeout)
        gateway = TwilioGateway(config) if config else None
        return cls(conn, gateway, public_url=settings.public_url)

    def run_once(self, limit: int = 100) -> SendReport:
        """Settle abandoned rows, cancel pointless ones, then try each due row at most once."""
        report = SendReport()
        self.recover_abandoned(report)
        self.cancel_moot(report)
        tried: list[int] = []
        while len(tried) < limit:
            taken = self._claim_next(tried, report)
            if taken is None:
                break
            claim, to_twilio = taken
            tried.append(claim.id)
            if to_twilio and self.gateway is not None:
                self._deliver(self.gateway, claim, report)
        return report

    def serve(
        self,
        stop: threading.Event,
        interval: float = 5.0,
        on_round: Callable[[], None] | None = None,
    ) -> None:
        """Send due rows until ``stop`` is set: as soon as a row is written (NOTIFY on
        ``DUE_CHANNEL``, from any process), and every ``interval`` seconds for retries, quiet
        hours ending and rows whose notification was missed."""
        listening = self.conn.autocommit  # in a transaction, notifications wait for its end
        if listening:
            self.conn.execute(f"LISTEN {DUE_CHANNEL}")
        while not stop.is_set():
            self.run_once()
            if on_round is not None:
                on_round()
            deadline = time.monotonic() + interval
            while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
                # Short waits, so that a stop is noticed; every pending NOTIFY is drained.
                if not listening:
                    stop.wait(left)
                elif any(True for _ in self.conn.notifies(timeout=min(left, 0.5), stop_after=1)):
                    break

    def recover_abandoned(self, report: SendReport | None = None) -> SendReport:
        """Settle the rows of senders that died mid-call, by asking Twilio; never resend.

        Not at Twilio, a row that lost its point meanwhile (its episode resolved) is cancelled:
        nothing went out, and nothing needs to. One its episode still needs, or one Twilio could
        not be asked about, is 'failed' with its outcome unknown, for a person to check.
        """
        report = report if report is not None else SendReport()
        for notification_id in store.sending_ids(self.conn):
            with self.conn.transaction():
                claim = store.lock_abandoned(self.conn, notification_id)
                if claim is None:
                    continue  # in flight in a live sender
                found, unasked = self._look_up(claim)
                now = self.clock()
                if found is not None:
                    store.mark_sent(self.conn, claim, found.sid, now)
                    self._event(claim, "notified", now, found, reconciled=True)
                    report.reconciled += 1
                    continue
                if unasked is None:
                    # Nothing went out. The episode is read unlocked: a resolution is final, and
                    # an acknowledgement lapsing meanwhile resumes its escalation chain.
                    state = self.conn.execute(
                        "SELECT state FROM episodes WHERE id = %s", (claim.episode_id,)
                    ).fetchone()
                    why = moot(
                        replace(
                            claim,
                            episode_state=state[0] if state else None,
                            reminder_moot=store.reminder_moot(self.conn, claim.id),
                        )
                    )
                    if why is not None and cancel(self.conn, claim, why, now):
                        report.cancelled += 1
                        continue
                error = f"{OUTCOME_UNKNOWN}: {unasked or 'no matching message at Twilio'}"
                store.mark_failed(self.conn, claim, error, now)
                self._event(claim, "notify_failed", now, error=error, will_retry=False)
                report.outcome_unknown += 1
        return report

    def cancel_moot(self, report: SendReport | None = None) -> SendReport:
        """Cancel the waiting rows that lost their point, e.g. by a nurse's action meanwhile."""
        report = report if report is not None else SendReport()
        with self.conn.transaction():
            report.cancelled += cancel_moot_notifications(self.conn, self.clock())
        return report

    def _claim_next(self, tried: list[int], report: SendReport) -> tuple[Claim, bool] | None:
        """The next due row and whether it goes to Twilio; settled here when it does not."""
        with self.conn.transaction():
            now = self.clock()
            claim = store.next_due(self.conn, now, skip=tried)
            if claim is None:
                return None
            why = moot(claim)
            if why is not None and (claim.attempts == 0 or self.gateway is None):
                # Twilio never saw it (or cannot be asked): cancelling leaves nothing in doubt.
                if cancel(self.conn, claim, why, now):
                    report.cancelled += 1
                store.release(self.conn, claim.id)
                return claim, False
            claim = store.start_attempt(self.conn, claim, now)
            if self.gateway is None:
                # Claim and outbox commit together: nothing leaves, so nothing is in doubt.
                store.mark_outboxed(self.conn, claim, now)
                store.release(self.conn, claim.id)
                self._event(claim, "notified", now, status="outboxed")
                report.outboxed += 1
                return claim, False
            return claim, True

    def _deliver(self, gateway: SmsGateway, claim: Claim, report: SendReport) -> None:
        # Pointless, yet claimed: an earlier attempt may have got through. Ask before cancelling.
        why = moot(claim)
        reconciled = False
        try:
            accepted = self._find_unrecorded(gateway, claim) if claim.attempts > 1 else None
            reconciled = accepted is not None
            if accepted is None and why is not None:
                self._finish_cancelled(claim, why, report)
                return
            if accepted is None:
                callback = status_callback_url(self.public_url, claim.id)
                accepted = gateway.send(claim.to, claim.body, callback)
        except PermanentSendError as exc:
            self._finish_failed(claim, str(exc), report)
        except RetryableSendError as exc:
            if claim.attempts >= self.policy.max_attempts:
                error = f"gave up after {claim.attempts} attempts: {exc}"
                self._finish_failed(claim, error, report)
            else:
                self._finish_retry(claim, str(exc), report)
        except BaseException:
            # Unforeseen: leave the row 'sending' for recovery to settle, never to resend.
            self._release_quietly(claim)
            raise
        else:
            with self.conn.transaction():
                now = self.clock()
                store.mark_sent(self.conn, claim, accepted.sid, now)
                store.release(self.conn, claim.id)
                self._event(claim, "notified", now, accepted, reconciled=reconciled)
            if reconciled:
                report.reconciled += 1
            else:
                report.sent += 1

    def _finish_failed(self, claim: Claim, error: str, report: SendReport) -> None:
        with self.conn.transaction():
            now = self.clock()
            if store.mark_failed(self.conn, claim, error, now):
                self._event(claim, "notify_failed", now, error=error, will_retry=False)
                report.failed += 1
            store.release(self.conn, claim.id)

    def _finish_cancelled(self, claim: Claim, why: str, report: SendReport) -> None:
        with self.conn.transaction():
            if cancel(self.conn, claim, why, self.clock()):
                report.cancelled += 1
            store.release(self.conn, claim.id)

    def _finish_retry(self, claim: Claim, error: str, report: SendReport) -> None:
        with self.conn.transaction():
            now = self.clock()
            next_at = now + self.policy.delay_after(claim.attempts)
            if store.mark_retry(self.conn, claim, error, next_at, now):
                self._event(
                    claim,
                    "notify_failed",
                    now,
                    error=error,
                    will_retry=True,
                    next_attempt_at=next_at.isoformat(),
                )
                report.retrying += 1
            store.release(self.conn, claim.id)

    def _look_up(self, claim: Claim) -> tuple[AcceptedMessage | None, str | None]:
        """The row's message at Twilio, and why Twilio could not be asked (None: it was)."""
        if self.gateway is None:
            return None, "no Twilio credentials to ask with"
        try:
            found = self._find_unrecorded(self.gateway, claim)
        except SendError as exc:
            return None, f"could not ask Twilio: {exc}"
        return found, None

    def _find_unrecorded(self, gateway: SmsGateway, claim: Claim) -> AcceptedMessage | None:
        """A message at Twilio matching the row and not already the SID of another row."""
        for message in gateway.find_sent(claim.to, claim.body, since=claim.created_at):
            taken = self.conn.execute(
                "SELECT 1 FROM notifications WHERE provider_id = %s AND id <> %s",
                (message.sid, claim.id),
            ).fetchone()
            if taken is None:
                return message
        return None

    def _release_quietly(self, claim: Claim) -> None:
        with contextlib.suppress(psycopg.Error):  # a dead session has released it already
            store.release(self.conn, claim.id)

    def _event(
        self,
        claim: Claim,
        kind: store.EventKind,
        now: datetime,
        accepted: AcceptedMessage | None = None,
        **extra: Any,
    ) -> None:
        details: dict[str, Any] = {
            "notification_id": claim.id,
            "recipient_kind": claim.recipient_kind,
            "attempt": claim.attempts,
        }
        if accepted is not None:
            details |= {"provider_id": accepted.sid, "status": accepted.status}
        store.record_event(self.conn, claim.episode_id, kind, details | extra, now)
