#!/usr/bin/env bash
# The database roles of a telemon server (docs/deployment.md, "Database roles").
#
#   telemon_owner    LOGIN  owns the database and its schema; `telemon migrate` connects as it
#   telemon_app      group  what the services may do, granted by migration 0012
#   telemon_service  LOGIN  member of telemon_app: ingest, alerts and the dashboard connect as it
#
# Run by the database image on the first start of an empty data directory (compose mounts it in
# /docker-entrypoint-initdb.d), as the superuser POSTGRES_USER. Safe to run again, e.g. on a
# server made before this script existed or to change the passwords:
#   docker compose exec -T db bash /docker-entrypoint-initdb.d/10-roles.sh
#
# Environment: TELEMON_DB_OWNER_PASSWORD and TELEMON_DB_APP_PASSWORD, or *_FILE naming a file
# that holds one (Docker secrets); POSTGRES_USER, POSTGRES_DB as the image sets them.
# TELEMON_DB_OWNER and TELEMON_DB_APP_USER name the two login roles (defaults above); a server
# whose schema the superuser created before this script existed keeps migrating as the superuser
# (TELEMON_DB_OWNER=$POSTGRES_USER, docs/deployment.md).
set -euo pipefail

die() {
    echo "10-roles.sh: $*" >&2
    exit 2
}

# secret NAME: $NAME, or the content of the file named by $NAME_FILE (one trailing newline cut).
secret() {
    local name=$1 file_var="${1}_FILE"
    if [[ -n ${!file_var:-} ]]; then
        [[ -r ${!file_var} ]] || die "$file_var names ${!file_var}, which cannot be read"
        printf '%s' "$(<"${!file_var}")"
    elif [[ -n ${!name:-} ]]; then
        printf '%s' "${!name}"
    else
        die "set $name or $file_var"
    fi
}

superuser="${POSTGRES_USER:-postgres}"
database="${POSTGRES_DB:-$superuser}"
owner="${TELEMON_DB_OWNER:-telemon_owner}"
app_user="${TELEMON_DB_APP_USER:-telemon_service}"
owner_password="$(secret TELEMON_DB_OWNER_PASSWORD)"
app_password="$(secret TELEMON_DB_APP_PASSWORD)"

# Variables reach SQL only as psql quotes them (:'literal', :"identifier"), never spliced in.
# The passwords go through psql's environment, which unlike its command line no other user sees.
ROLES_OWNER_PASSWORD="$owner_password" ROLES_APP_PASSWORD="$app_password" \
psql -v ON_ERROR_STOP=1 -X -q --username "$superuser" --dbname "$database" \
    -v database="$database" -v superuser="$superuser" -v owner="$owner" -v app_user="$app_user" \
    <<'SQL'
\getenv owner_password ROLES_OWNER_PASSWORD
\getenv app_password ROLES_APP_PASSWORD
SELECT format('CREATE ROLE %I NOLOGIN', 'telemon_app')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'telemon_app') \gexec
SELECT format('CREATE ROLE %I', :'app_user')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_user') \gexec
ALTER ROLE :"app_user" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'app_password';
GRANT telemon_app TO :"app_user";

-- The owner: no superuser, but owns the database (so, from PostgreSQL 15, its public schema)
-- and may read the server settings `telemon migrate` looks at to choose the storage backend.
-- Unless it is the superuser itself (a server set up before this script).
SELECT format('CREATE ROLE %I', :'owner')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'owner') \gexec
SELECT format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE', :'owner')
WHERE :'owner' <> :'superuser' \gexec
ALTER ROLE :"owner" PASSWORD :'owner_password';
SELECT format('GRANT pg_read_all_settings TO %I', :'owner')
WHERE :'owner' <> :'superuser' \gexec
ALTER DATABASE :"database" OWNER TO :"owner";
-- telemon_app exists already, so migrating needs no CREATEROLE.
SQL
echo "10-roles.sh: roles $owner (migrations) and $app_user (member of telemon_app) ready in $database"
