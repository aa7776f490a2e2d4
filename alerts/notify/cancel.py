"""Cancelling the SMS that lost their point before they left: status 'cancelled', with why.

What counts as pointless is routing's rule (``routing.cancel_reason``); for a patient's
reminder, its patient's state (``store.reminder_moot``: discharged, opted out, measured). It is
applied in the transaction that changes the episode: the alerts engine's when it resolves one,
the dashboard's when a nurse resolves or acknowledges; then by the sender at each round, for
rows that were locked at that moment (and every reminder that lost its point), and in the
sender's claim, the last look before a row goes to Twilio.
Rows Twilio never saw are cancelled outright. A row an earlier attempt may have delivered (a
timeout) is cancelled only once Twilio, asked, has no such message; otherwise it is recorded as
sent. SMS already sent are never touched.
"""

from __future__ import annotations

from datetime import datetime

import psycopg

from alerts.notify import store
from alerts.notify.routing import cancel_reason
from alerts.notify.store import Claim


def moot(claim: Claim) -> str | None:
    """Why the claimed row should not be sent any more; None while it should."""
    if claim.reminder_moot is not None:
        return claim.reminder_moot  # a patient's reminder: its patient's state, as claimed
    if claim.episode_state is None:
        return None  # about no episode: nothing can make it pointless
    return cancel_reason(claim.episode_state, claim.reason, superseded=claim.superseded)


def cancel(conn: psycopg.Connection, claim: Claim, why: str, now: datetime) -> bool:
    """Cancel the row with its episode event; False when it was settled meanwhile."""
    if not store.mark_cancelled(conn, claim, why, now):
        return False
    details = {
        "notification_id": claim.id,
        "recipient_kind": claim.recipient_kind,
        "attempt": claim.attempts,
        "cancel_reason": why,
    }
    store.record_event(conn, claim.episode_id, "notify_cancelled", details, now)
    return True


def cancel_moot_notifications(
    conn: psycopg.Connection, now: datetime, episode_id: int | None = None
) -> int:
    """Cancel the waiting rows Twilio never saw that lost their point (of ``episode_id`` only,
    if given); how many. In the caller's transaction."""
    cancelled = 0
    for claim in store.unsent_maybe_moot(conn, episode_id):
        why = moot(claim)
        if why is not None and cancel(conn, claim, why, now):
            cancelled += 1
    return cancelled
