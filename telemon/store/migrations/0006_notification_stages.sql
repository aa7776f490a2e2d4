-- Notifications by stage of their alert, and the ones cancelled before they were sent.
--
-- An alert may text the same person at several stages: when it opens, at each worsening, at each
-- escalation while unacknowledged, after each snooze that lapsed. The stage ('escalated:2')
-- ends the idempotency key and is kept here to be queried; the reason ('opened', 'worsened',
-- 'escalated') chose the text and says whether an acknowledgement makes the SMS pointless.
ALTER TABLE notifications
    ADD COLUMN reason text CHECK (reason IN ('opened', 'worsened', 'escalated')),
    ADD COLUMN stage text,
    ADD COLUMN cancel_reason text;

-- 'cancelled': never handed to Twilio because the alert was resolved, or acknowledged when the SMS
-- only asked for that, or a later SMS of the same kind superseded it, before its time came.
ALTER TABLE notifications
    DROP CONSTRAINT notifications_status_check,
    ADD CONSTRAINT notifications_status_check
        CHECK (status IN ('pending', 'sending', 'sent', 'delivered', 'undelivered', 'failed',
                          'outboxed', 'cancelled')),
    ADD CONSTRAINT notifications_cancel_reason_check
        CHECK ((status = 'cancelled') = (cancel_reason IS NOT NULL));

-- Cancelling looks up the other rows of the same alert.
CREATE INDEX notifications_alert ON notifications (alert_id);

-- Rows still waiting were keyed 'alert:{id}:{recipient kind}:{recipient}:{reason}', the first
-- stage of each kind having that same key now; the ones already settled need neither column.
UPDATE notifications
SET reason = split_part(idempotency_key, ':', 5), stage = split_part(idempotency_key, ':', 5)
WHERE status IN ('pending', 'sending') AND idempotency_key LIKE 'alert:%'
  AND split_part(idempotency_key, ':', 5) IN ('opened', 'worsened', 'escalated');
