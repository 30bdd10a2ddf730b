#!/bin/bash
# vap-healthcheck: the image's HEALTHCHECK. Finds the service from PID 1 (vap-entrypoint
# execs it) and checks it without curl: the gateway must answer 200 on /healthz, the
# others must accept a TCP connection on their listening port.
set -uo pipefail

# tcp_open HOST PORT: whether a TCP connection opens within the healthcheck's timeout.
tcp_open() {
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# port of a tcp:// URL, or the default
port_of() { # port_of URL DEFAULT
    local url=${1:-}
    [[ $url =~ ^tcp://.*:([0-9]+)$ ]] && { printf '%s\n' "${BASH_REMATCH[1]}"; return; }
    printf '%s\n' "$2"
}

service=$(cat /proc/1/comm 2>/dev/null || true)
case $service in
vap-gateway)
    port=${PORT:-8000}
    exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
    printf 'GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
    IFS= read -r -t 3 status <&3 || exit 1
    [[ $status == HTTP/1.[01]\ 200* ]]
    ;;
vap-auth)
    tcp_open 127.0.0.1 "$(port_of "${AUTH_RPC_URL:-}" 7101)"
    ;;
vap-usage)
    tcp_open 127.0.0.1 "$(port_of "${USAGE_RPC_URL:-}" 7201)"
    ;;
vap-voice)
    port=$(port_of "${VOICE_MEDIA_URL:-}" 0)
    if [[ $port == 0 ]]; then
        kill -0 1 # kernel-picked port: only whether the worker runs
    else
        tcp_open 127.0.0.1 "$port"
    fi
    ;;
*)
    exit 0 # not one of ours (a shell, a one-off command)
    ;;
esac
