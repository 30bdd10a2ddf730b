#!/bin/sh
# Makes what the internal links need for mutual TLS (common/link.h): a private CA and,
# for each NAME given (default: link), NAME.pem holding a certificate signed by that CA
# and its private key, for LINK_TLS_CERT_FILE. Every certificate carries SERVER_NAME
# (default vap-internal, LINK_TLS_SERVER_NAME) as its DNS subjectAltName and may serve
# and dial. An existing CA in DIR is reused, so more certificates can be issued later.
#
#   deploy/link-certs.sh DIR [NAME...]        (SERVER_NAME=... to change the name)
#
# Then, in every service's environment: LINK_TLS_CA_FILE=DIR/ca.crt,
# LINK_TLS_CERT_FILE=DIR/NAME.pem, and tls+tcp:// in every *_URL(S) of the links.
# Keep DIR/ca.key off the servers once the certificates are made (docs/SECURITY.md).
set -eu
if [ $# -lt 1 ]; then
    echo "usage: $0 DIR [NAME...]" >&2
    exit 2
fi
dir=$1
shift
[ $# -gt 0 ] || set -- link
name=${SERVER_NAME:-vap-internal}
days=${DAYS:-825}
umask 077
mkdir -p "$dir"
curve="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
if [ ! -f "$dir/ca.crt" ]; then
    # shellcheck disable=SC2086
    openssl req -x509 $curve -keyout "$dir/ca.key" -out "$dir/ca.crt" -days "$days" \
        -subj "/CN=vap internal links CA" 2>/dev/null
    chmod 644 "$dir/ca.crt"
fi
for cert in "$@"; do
    tmp=$(mktemp -d)
    # shellcheck disable=SC2086
    openssl req $curve -keyout "$tmp/key" -out "$tmp/csr" -subj "/CN=$name" 2>/dev/null
    printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$name" >"$tmp/ext"
    openssl x509 -req -in "$tmp/csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
        -CAcreateserial -out "$tmp/crt" -days "$days" -extfile "$tmp/ext" 2>/dev/null
    cat "$tmp/crt" "$tmp/key" >"$dir/$cert.pem"
    rm -rf "$tmp"
    echo "$dir/$cert.pem"
done
