#!/usr/bin/env bash
# Dump the telemon database to one file that deploy/restore.sh restores (docs/deployment.md,
# "Backups").
#
#   deploy/backup.sh [FILE]    default: backups/telemon-<UTC time>.dump in the repository
#
# Writes FILE (pg_dump's custom format, compressed) and FILE.versions, the PostgreSQL and
# TimescaleDB versions the dump was taken from: TimescaleDB restores only into the same
# extension version. Both files are readable by their owner only (patient data). The dump is
# written beside FILE first and renamed once pg_restore has read its table of contents, so a
# FILE that exists is complete. A running stack keeps running: pg_dump reads one consistent
# snapshot. Environment: see deploy/pg-common.sh.
set -euo pipefail

# Resolved before pg-common.sh changes directory, so a relative FILE means the caller's.
file="$(realpath -m "${1:-$(dirname "$0")/../backups/telemon-$(date -u +%Y%m%dT%H%M%SZ).dump}")"
# shellcheck source=deploy/pg-common.sh
source "$(dirname "$0")/pg-common.sh"

[[ ! -e $file ]] || die "$file exists: choose another name"
umask 077
mkdir -p "$(dirname "$file")"

server_version="$(sql "$db_name" "SHOW server_version")" ||
    die "cannot reach database $db_name (is the db service running?)"
timescaledb="$(timescaledb_version "$db_name")"

partial="$file.partial"
trap 'rm -f "$partial"' EXIT
pg pg_dump --format=custom --no-password -U "$db_user" -d "$db_name" >"$partial"
# The archive must be readable to the end: a truncated or mangled dump fails here, not on the
# day it is needed.
pg pg_restore --list <"$partial" >/dev/null || die "the dump just written cannot be read"
mv "$partial" "$file"
printf 'postgresql=%s\ntimescaledb=%s\n' "$server_version" "$timescaledb" >"$file.versions"

say "${timescaledb:+TimescaleDB $timescaledb, }PostgreSQL $server_version;" \
    "$(stat -c %s "$file") bytes"
echo "$file"
