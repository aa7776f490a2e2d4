-- Compression keyed by the unique key (gateway_id, seq, measured_at), issue 16.
--
-- 0002 segmented by (patient_id, metric_id) and ordered by measured_at only: a late row for a
-- compressed chunk then had to decompress whole batches to check the unique key (a 10,000-row
-- backlog into a compressed chunk of 1,000,000 rows: 175 s). Segmented by gateway_id and ordered
-- by (measured_at DESC, seq), every key column is a segment-by or order-by column and the check
-- reads only the batches whose gateway and time range match (0.19 s).
--
-- 0002 is left as it was (an applied migration is never edited: its checksum is recorded), so a
-- new install passes through 0002's layout for a moment, with no chunk compressed yet.

-- Chunks that can still receive a replayed backlog (younger than the outbox horizon,
-- COMPRESSION_HORIZON_DAYS in telemon/config.py) were compressed with the old layout at 7 days:
-- decompress them; the compression policy recompresses them with the new layout once they are
-- past TELEMON_COMPRESS_AFTER_DAYS.
-- https://www.tigerdata.com/docs/api/latest/compression/decompress_chunk
-- https://www.tigerdata.com/docs/api/latest/informational-views/chunks/
SELECT decompress_chunk(format('%I.%I', chunk_schema, chunk_name)::regclass, true)
FROM timescaledb_information.chunks
WHERE hypertable_schema = current_schema() AND hypertable_name = 'observations'
  AND is_compressed AND range_end > now() - interval '30 days';

-- https://github.com/timescale/docs/blob/latest/api/compression/alter_table_compression.md
-- Older TimescaleDB versions refuse to change the settings while any chunk is compressed
-- ("cannot change configuration on already compressed chunks", feature_not_supported); newer
-- ones keep each compressed chunk's own settings. On the older ones the remaining compressed
-- chunks are decompressed first (this needs their uncompressed size on disk: docs/storage.md).
DO $$
BEGIN
    BEGIN
        ALTER TABLE observations SET (
            timescaledb.compress,
            timescaledb.compress_segmentby = 'gateway_id',
            timescaledb.compress_orderby = 'measured_at DESC, seq'
        );
    EXCEPTION WHEN feature_not_supported THEN
        RAISE NOTICE 'TimescaleDB changes the compression layout only with no compressed chunk: decompressing all chunks (the policy recompresses them)';
        PERFORM decompress_chunk(c, true) FROM show_chunks('observations') c;
        ALTER TABLE observations SET (
            timescaledb.compress,
            timescaledb.compress_segmentby = 'gateway_id',
            timescaledb.compress_orderby = 'measured_at DESC, seq'
        );
    END;
END $$;
