-- A finding the confirm timeout opened (its first reading in band, no second one within the
-- rule's confirm.timeout) is kept unconfirmed in the debounce state until its next reading
-- confirms or clears it (alerts/debounce.py). Existing rows were all confirmed.
ALTER TABLE alert_rule_state ADD COLUMN unconfirmed boolean NOT NULL DEFAULT false;
