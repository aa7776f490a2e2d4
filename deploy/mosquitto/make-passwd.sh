#!/usr/bin/env bash
# Create or update the Mosquitto password file of the telemon broker (docs/deployment.md).
#
#   make-passwd.sh server          create the users ingest and server, each with a new password
#                                  (run again to rotate both)
#   make-passwd.sh gateway ID...   add gateways, each with a new password; the MQTT username of a
#                                  gateway IS its gateway id (deploy/mosquitto/acl)
#   make-passwd.sh remove NAME...  delete users, e.g. a returned gateway
#   make-passwd.sh permissions     only set the owner and mode of passwd and acl (after a git pull
#                                  that rewrote acl; every command above does it too)
#
# New passwords are printed once, on stdout, as KEY=VALUE lines: the server ones go in the .env
# file beside compose.yaml, a gateway's TELEMON_MQTT_URL in that gateway's /etc/telemon/gateway.env.
# The file keeps only salted hashes. A running broker rereads it on SIGHUP:
#   docker compose kill -s HUP mqtt
#
# Environment: MOSQUITTO_PASSWD_FILE (default: passwd beside this script, which compose mounts),
# MOSQUITTO_ACL_FILE (default: acl beside this script), MQTT_PUBLIC_HOST (the broker's host name
# as gateways reach it, only for the printed URL), MOSQUITTO_IMAGE (see compose.yaml).
# Uses mosquitto_passwd from the host if installed, else from the broker's image through docker:
# installing Debian's mosquitto package on the server would also start a second broker.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
file="${MOSQUITTO_PASSWD_FILE:-$here/passwd}"
acl_file="${MOSQUITTO_ACL_FILE:-$here/acl}"
public_host="${MQTT_PUBLIC_HOST:-mqtt.example.org}"
# The image compose.yaml runs (keep the two in step), for hosts without mosquitto_passwd.
mosquitto_image="${MOSQUITTO_IMAGE:-eclipse-mosquitto:2.0.22}"
# uid and gid of the mosquitto user in the eclipse-mosquitto image. The broker reads the password
# and ACL files after dropping root, as that user, and Mosquitto 2.0 warns that future versions
# will refuse either file unless it belongs to that user and group and nobody else may read it.
broker_uid=1883
broker_gid=1883

# The file is never world-readable, not even between its creation and the chmod below.
umask 077

die() {
    echo "make-passwd.sh: $*" >&2
    exit 2
}

# mosquitto_passwd FLAGS... -- ARGS...: run on $file, which goes between the flags and the args.
run_passwd() {
    local flags=()
    while [[ $1 != -- ]]; do
        flags+=("$1")
        shift
    done
    shift
    if command -v mosquitto_passwd >/dev/null 2>&1; then
        mosquitto_passwd "${flags[@]}" "$file" "$@"
    else
        docker run --rm -v "$(dirname "$file"):/pw" "$mosquitto_image" \
            mosquitto_passwd "${flags[@]}" "/pw/$(basename "$file")" "$@"
    fi
}

# 32 letters and digits (~190 bits): safe inside an mqtt:// URL without percent-encoding.
new_password() {
    head -c 48 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9' | cut -c1-32
}

# -b puts the password on the command line of a short-lived local process; acceptable on the
# admin's server, and it keeps this script non-interactive.
set_password() {
    local create=()
    [[ -e $file ]] || create=(-c)
    run_passwd "${create[@]}" -b -- "$1" "$2"
}

# The gateway id grammar of telemon/topics.py minus ':', which separates user from hash in the
# password file. ingest and server are refused because the ACL's pattern lines apply to every user:
# a gateway with their name would share their rights.
check_gateway_id() {
    [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ ]] || die "invalid gateway id: '$1'"
    [[ $1 != ingest && $1 != server ]] || die "'$1' is a server user, not a gateway id"
}

# Read and write for the broker's user only (see broker_uid), as Mosquitto asks. chown needs root.
restrict_to_broker() {
    chmod 0600 "$1"
    if ! chown "$broker_uid:$broker_gid" "$1" 2>/dev/null; then
        echo "make-passwd.sh: could not chown $broker_uid:$broker_gid $1: run it as root," \
            "or the broker cannot read the file" >&2
    fi
}

fix_permissions() {
    if [[ -e $file ]]; then restrict_to_broker "$file"; fi
    restrict_to_broker "$acl_file"
}

[[ $# -ge 1 ]] || die "usage: make-passwd.sh server | gateway ID... | remove NAME... | permissions"
command=$1
shift
case $command in
server)
    [[ $# -eq 0 ]] || die "usage: make-passwd.sh server"
    for user in ingest server; do
        password=$(new_password)
        set_password "$user" "$password"
        echo "MQTT_${user^^}_PASSWORD=$password"
    done
    ;;
gateway)
    [[ $# -ge 1 ]] || die "usage: make-passwd.sh gateway ID..."
    for id in "$@"; do check_gateway_id "$id"; done
    for id in "$@"; do
        password=$(new_password)
        set_password "$id" "$password"
        echo "TELEMON_MQTT_URL=mqtts://$id:$password@$public_host:8883"
    done
    ;;
remove)
    [[ $# -ge 1 ]] || die "usage: make-passwd.sh remove NAME..."
    [[ -e $file ]] || die "no password file at $file"
    for user in "$@"; do run_passwd -D -- "$user"; done
    ;;
permissions)
    [[ $# -eq 0 ]] || die "usage: make-passwd.sh permissions"
    ;;
*)
    die "unknown command '$command' (server, gateway, remove or permissions)"
    ;;
esac
fix_permissions
echo "make-passwd.sh: updated $file and $acl_file;" \
    "reload a running broker: docker compose kill -s HUP mqtt" >&2
