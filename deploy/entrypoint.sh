#!/bin/bash
# vap-entrypoint: picks the service from the first argument and execs it, so the service
# is PID 1 and receives SIGTERM itself (each one drains on SIGTERM).
#
#   gateway | auth | usage | voice      run vap-<name>
#   vap-gateway ... | any other command run it as given
#
# Addresses that depend on the container (set only when unset, so a value from the
# environment always wins):
#   voice    VOICE_MEDIA_URL tcp://0.0.0.0:PORT (PORT != 0) -> VOICE_ADVERTISE_URL
#            tcp://<this container's address>:PORT; with port 0 -> VOICE_ADVERTISE_HOST
#   gateway  GW_VOICE_ADVERTISE_HOST=<this container's address> when GW_VOICE_MEDIA_URL
#            listens on a wildcard address
# so `docker-compose up --scale voice=N` and Kubernetes replicas need no per-instance
# configuration: each worker announces its own address in its heartbeats.
set -euo pipefail

# This container's IPv4 address: hostname -i, else /etc/hosts, else the first global one.
own_address() {
    local addr=
    addr=$(hostname -i 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9]+(\.[0-9]+){3}$' |
        grep -v '^127\.' | head -n 1) || true
    if [[ -z $addr ]]; then
        addr=$(getent hosts "$(hostname)" 2>/dev/null | awk '$1 !~ /^127\./ && $1 !~ /:/ {print $1; exit}') || true
    fi
    if [[ -z $addr ]]; then
        echo "vap-entrypoint: cannot find this container's address; set the advertise variables" >&2
        exit 1
    fi
    printf '%s\n' "$addr"
}

# Whether a tcp:// URL listens on every address (0.0.0.0, *, [::] or an empty host).
wildcard_url() {
    [[ $1 =~ ^tcp://(0\.0\.0\.0|\*|\[::\]|):[0-9]+$ ]]
}

url_port() { printf '%s\n' "${1##*:}"; }

cmd=${1:-gateway}
case $cmd in
gateway | auth | usage | voice)
    shift || true
    set -- "/usr/local/bin/vap-$cmd" "$@"
    ;;
esac

case ${1##*/} in
vap-voice)
    media=${VOICE_MEDIA_URL:-}
    if [[ -n $media ]] && wildcard_url "$media" && [[ -z ${VOICE_ADVERTISE_URL:-} ]]; then
        port=$(url_port "$media")
        host=${VOICE_ADVERTISE_HOST:-}
        [[ -n $host ]] || host=$(own_address) || exit 1
        if [[ $port == 0 ]]; then
            export VOICE_ADVERTISE_HOST=$host
        else
            export VOICE_ADVERTISE_URL="tcp://$host:$port"
        fi
    fi
    ;;
vap-gateway)
    media=${GW_VOICE_MEDIA_URL:-}
    if [[ -n $media ]] && wildcard_url "$media" && [[ -z ${GW_VOICE_ADVERTISE_HOST:-} ]]; then
        GW_VOICE_ADVERTISE_HOST=$(own_address) || exit 1
        export GW_VOICE_ADVERTISE_HOST
    fi
    ;;
esac

exec "$@"
