"""SMS about episodes to the patient's GP and the service centre's duty phone, at most once each.

The alerts engine calls :func:`enqueue_episode_notifications` in the transaction that opens,
worsens or escalates an episode, and :func:`cancel_moot_notifications` in the one that resolves
it (the dashboard likewise when a nurse resolves or acknowledges); a :class:`Sender` on its own
connection sends the rows; the dashboard feeds Twilio's delivery reports to
:func:`apply_status_callback`.
"""

from alerts.notify.callbacks import (
    STATUS_CALLBACK_PATH,
    StatusReport,
    apply_status_callback,
    is_valid_signature,
    status_callback_url,
)
from alerts.notify.cancel import cancel_moot_notifications
from alerts.notify.enqueue import enqueue_episode_notifications, load_episode_context
from alerts.notify.sender import RetryPolicy, Sender, SendReport
from alerts.notify.twilio_gateway import TwilioConfig, TwilioGateway

__all__ = [
    "STATUS_CALLBACK_PATH",
    "RetryPolicy",
    "SendReport",
    "Sender",
    "StatusReport",
    "TwilioConfig",
    "TwilioGateway",
    "apply_status_callback",
    "cancel_moot_notifications",
    "enqueue_episode_notifications",
    "is_valid_signature",
    "load_episode_context",
    "status_callback_url",
]
