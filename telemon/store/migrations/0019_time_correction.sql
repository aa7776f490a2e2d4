-- Issue 19, the gateway's time model (docs/time.md): every reading keeps how its time was made
-- from the device's stamp (telemon.time_correction.TimeCorrection: the stamp as sent, the zone,
-- DST and clock offset applied, on which basis), NULL for readings from gateways that predate it.
-- A plain nullable column: TimescaleDB adds it to compressed chunks without rewriting them.
ALTER TABLE observations ADD COLUMN time_correction jsonb;

-- The device's clock as the gateway last reported it: how far off, and when the gateway last
-- set it right and from how far off. The equipment page lists the clocks that need a look.
ALTER TABLE devices
    ADD COLUMN clock_skew_s integer,
    ADD COLUMN clock_set_at timestamptz,
    ADD COLUMN clock_set_from_s integer;
