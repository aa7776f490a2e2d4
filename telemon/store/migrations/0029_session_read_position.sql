-- Issue 21, the dashboard reading from a streaming replica (docs/scaling.md, "Read replica"):
-- the primary's WAL position after the session's last write. The session's next reads use the
-- replica only once it has replayed this far, so a person sees their own action at once however
-- far the replica lags; NULL: the session wrote nothing, any replica position will do.
ALTER TABLE dashboard_sessions ADD COLUMN written_lsn pg_lsn;
