# Shared by deploy/backup.sh and deploy/restore.sh (sourced, not run): how PostgreSQL's client
# programs reach the database, and the storage backend of a database.
#
# PG_EXEC is the command that runs a client program where the database is. By default that is
# inside compose's db container, with -T: without it `docker compose exec` allocates a TTY, whose
# line discipline can rewrite bytes (LF -> CRLF) and corrupt a binary dump. PG_EXEC= (empty) runs
# the local programs instead, reaching the server through the libpq variables (PGHOST, PGPORT,
# PGPASSWORD...): that is how tests/deploy/test_backup_restore.py runs these very scripts.
# TELEMON_DB_NAME and TELEMON_DB_USER name the database and the role (default telemon, both).

db_name="${TELEMON_DB_NAME:-telemon}"
db_user="${TELEMON_DB_USER:-telemon}"
read -ra pg_exec <<<"${PG_EXEC-docker compose exec -T db}"

die() {
    echo "$(basename "$0"): $*" >&2
    exit 2
}

say() {
    echo "$(basename "$0"): $*" >&2
}

# pg PROGRAM ARGS...: a PostgreSQL client program, where the database is.
pg() {
    "${pg_exec[@]}" "$@"
}

# sql DATABASE QUERY: one query's rows, unaligned, stopping on the first error.
sql() {
    pg psql -X -q -v ON_ERROR_STOP=1 -At -U "$db_user" -d "$1" -c "$2"
}

# The installed TimescaleDB version of a database, or nothing for native partitions.
timescaledb_version() {
    sql "$1" "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
}

# compose.yaml is in the directory above this one; `docker compose` looks for it in the
# working directory.
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
