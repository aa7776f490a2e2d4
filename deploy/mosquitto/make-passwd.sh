#!/usr/bin/env bash
# Create or update the Mosquitto password file of the telemon broker (docs/deployment.md).
#
#   make-passwd.sh server          create the users ingest and server, each with a new password
#                                  (run again to rotate both)
#   make-passwd.sh gateway ID...   add gateways, each with a new password; the MQTT username of a
#                                  gateway IS its gateway id (deploy/mosquitto/acl)
#   make-passwd.sh bridge AREA...  on a central broker (central.conf): add the bridge user
#                                  bridge-AREA with a new password, write the area broker's
#                                  bridge.d/AREA.conf and rebuild acl-central (docs/scaling.md)
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
# as gateways reach it, only for the printed URL), MQTT_CENTRE_ADDRESS (host:port of the central
# broker as the areas' bridges reach it), MOSQUITTO_IMAGE (see compose.yaml).
# Uses mosquitto_passwd from the host if installed, else from the broker's image through docker:
# installing Debian's mosquitto package on the server would also start a second broker.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
file="${MOSQUITTO_PASSWD_FILE:-$here/passwd}"
acl_file="${MOSQUITTO_ACL_FILE:-$here/acl}"
public_host="${MQTT_PUBLIC_HOST:-mqtt.example.org}"
centre_address="${MQTT_CENTRE_ADDRESS:-mqtt.example.org:8883}"
bridge_dir="$here/bridge.d"
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
    if [[ $1 == bridge-* ]]; then die "'$1': bridge-* names the areas' bridges"; fi
}

# An area's name becomes the bridge's user bridge-AREA and its file name.
check_area() {
    [[ $1 =~ ^[a-z0-9][a-z0-9-]{0,31}$ ]] || die "invalid area name: '$1' (a-z, 0-9, -)"
}

# acl-central: the shipped acl plus one block per bridge user found in the password file.
write_central_acl() {
    local central="$here/acl-central" area
    cp "$acl_file" "$central.new"
    if [[ -e $file ]]; then
        for area in $(sed -n 's/^bridge-\([a-z0-9-]*\):.*/\1/p' "$file"); do
            sed "s/@AREA@/$area/g" "$here/acl-bridge.template" >>"$central.new"
        done
    fi
    mv "$central.new" "$central"
    restrict_to_broker "$central"
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

[[ $# -ge 1 ]] || die "usage: make-passwd.sh server | gateway ID... | bridge AREA... | remove NAME... | permissions"
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
bridge)
    [[ $# -ge 1 ]] || die "usage: make-passwd.sh bridge AREA..."
    for area in "$@"; do check_area "$area"; done
    mkdir -p "$bridge_dir"
    for area in "$@"; do
        password=$(new_password)
        set_password "bridge-$area" "$password"
        sed -e "s/@AREA@/$area/g" -e "s/@CENTRE@/$centre_address/g" \
            -e "s/@PASSWORD@/$password/g" "$here/bridge.conf.template" >"$bridge_dir/$area.conf"
        restrict_to_broker "$bridge_dir/$area.conf"
        echo "make-passwd.sh: wrote $bridge_dir/$area.conf: copy it to the bridge.d/ of" \
            "area $area's broker (area.conf) and restart that broker" >&2
    done
    write_central_acl
    ;;
remove)
    [[ $# -ge 1 ]] || die "usage: make-passwd.sh remove NAME..."
    [[ -e $file ]] || die "no password file at $file"
    for user in "$@"; do run_passwd -D -- "$user"; done
    if [[ -e $here/acl-central ]]; then write_central_acl; fi
    ;;
permissions)
    [[ $# -eq 0 ]] || die "usage: make-passwd.sh permissions"
    ;;
*)
    die "unknown command '$command' (server, gateway, bridge, remove or permissions)"
    ;;
esac
fix_permissions
echo "make-passwd.sh: updated $file and $acl_file;" \
    "reload a running broker: docker compose kill -s HUP mqtt" >&2
