-- Compression keyed by the unique key: TimescaleDB only (the .timescale.sql variant). Native
-- partitions are not compressed; nothing to change.
SELECT 1;
