#!/usr/bin/env bash
# Restore a dump made by deploy/backup.sh into a new database (docs/deployment.md, "Restore").
#
#   deploy/restore.sh FILE
#
# The database (TELEMON_DB_NAME, default telemon) must not exist: stop the services and rename
# or drop the old one first, as the guide shows. The script creates it, restores FILE into it
# and, for a TimescaleDB dump, follows Timescale's procedure for pg_dump/pg_restore
# (https://docs.timescale.com/self-hosted/latest/backup-and-restore/logical-backup/): the same
# extension version as the dump (FILE.versions), created first, then timescaledb_pre_restore()
# before pg_restore and timescaledb_post_restore() after. A native dump needs neither. Then
# `telemon migrate` (docker compose run --rm migrate) brings the schema and the extension up to
# the running version. Environment: see deploy/pg-common.sh.
set -euo pipefail

[[ $# -eq 1 ]] || { echo "usage: deploy/restore.sh FILE" >&2; exit 2; }
file="$(realpath -m "$1")"
# shellcheck source=deploy/pg-common.sh
source "$(dirname "$0")/pg-common.sh"

[[ -f $file ]] || die "no dump at $file"
# The dump's own table of contents says whether it holds the extension.
toc="$(pg pg_restore --list <"$file")" || die "$file is not a readable pg_dump archive"
timescaledb=""
if grep -Eq '^[0-9]+; [0-9]+ [0-9]+ EXTENSION - timescaledb( |$)' <<<"$toc"; then
    [[ -f $file.versions ]] ||
        die "$file is a TimescaleDB dump without $file.versions: its extension version is unknown"
    timescaledb="$(sed -n 's/^timescaledb=//p' "$file.versions")"
    [[ $timescaledb =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
        die "$file.versions names no TimescaleDB version"
fi

exists="$(sql postgres "SELECT 1 FROM pg_database WHERE datname = '${db_name//\'/\'\'}'")"
[[ -z $exists ]] || die "database $db_name exists: stop the services, then rename or drop it" \
    "(docs/deployment.md, \"Restore\")"
if [[ -n $timescaledb ]]; then
    available="$(sql postgres "SELECT 1 FROM pg_available_extension_versions
        WHERE name = 'timescaledb' AND version = '$timescaledb'")"
    [[ -n $available ]] || die "the dump needs TimescaleDB $timescaledb, which this server" \
        "does not have: run the image it was taken with (FILE.versions), restore, then upgrade"
fi

trap 'say "failed: database $db_name is incomplete; drop it before trying again"' ERR
pg createdb --no-password -U "$db_user" -T template0 "$db_name"
if [[ -n $timescaledb ]]; then
    # https://docs.timescale.com/api/latest/administration/timescaledb_pre_restore/
    sql "$db_name" "CREATE EXTENSION timescaledb VERSION '$timescaledb'"
    sql "$db_name" "SELECT timescaledb_pre_restore()" >/dev/null
fi
pg pg_restore --exit-on-error --no-password -U "$db_user" -d "$db_name" <"$file"
if [[ -n $timescaledb ]]; then
    # https://docs.timescale.com/api/latest/administration/timescaledb_post_restore/
    sql "$db_name" "SELECT timescaledb_post_restore()" >/dev/null
fi
# pg_restore does not carry the planner's statistics: without them the first queries crawl.
sql "$db_name" "ANALYZE"
trap - ERR

say "restored $file into $db_name (${timescaledb:+TimescaleDB $timescaledb}${timescaledb:-native storage});" \
    "next: docker compose run --rm migrate, then docker compose up -d"
