#!/bin/sh
# Create one room printer as secroom expects it: a stopped hold queue that clients print to, a
# hidden release queue that the gateway moves released jobs to, and a hidden, stopped staging
# queue a release of many jobs passes through. See README.md.
#
#   setup-queues.sh NAME DEVICE_URI (-m MODEL | -P PPD_FILE)
#   e.g. setup-queues.sh room-printer ipp://192.0.2.20/ipp/print -m everywhere
#
# Run as root on the gateway after installing secroom-policy.conf into /etc/cups/cupsd.conf.
set -eu

if [ $# -lt 4 ]; then
    echo "usage: $0 NAME DEVICE_URI (-m MODEL | -P PPD_FILE)" >&2
    exit 2
fi
NAME=$1
DEVICE=$2
shift 2
RELEASE="${NAME}-release"
STAGING="${NAME}-staging"
GATEWAY_USER=${SECROOM_CUPS_USER:-secroom-gw}
CUPSD_CONF=${CUPSD_CONF:-/etc/cups/cupsd.conf}  # lpadmin & co. honour CUPS_SERVER

if ! grep -q '^<Policy secroom>' "$CUPSD_CONF"; then
    echo "install hardware/cups/secroom-policy.conf into $CUPSD_CONF first" >&2
    exit 1
fi

# Release queue: the real printer. Not shared, enabled, accepts jobs; only the gateway account
# may print to it directly (moves are guarded by the secroom policy, not by this list).
lpadmin -p "$RELEASE" -E -v "$DEVICE" "$@" \
    -o printer-is-shared=false \
    -o printer-op-policy=secroom \
    -o printer-error-policy=retry-job \
    -u "allow:$GATEWAY_USER" \
    -D "secroom release queue for $NAME (do not print here)"

# Hold queue: what clients see and print to. Same driver, so clients get the same options.
# Its device can never print: if someone starts the queue by mistake the jobs stay queued
# (the socket backend keeps retrying a closed port) and the gateway stops it again.
lpadmin -p "$NAME" -E -v "socket://127.0.0.1:9" "$@" \
    -o printer-is-shared=true \
    -o printer-op-policy=secroom \
    -o printer-error-policy=stop-printer \
    -D "Room printer (release with your card)"
# Stopped (-E above left it accepting): every job waits, whatever job-hold-until its client sends.
cupsdisable -r "held until released by card" "$NAME"

# Staging queue: a tap that releases several jobs moves the first to the release queue at once
# and parks the others here (a move to a stopped queue is cheap), then moves them all on with
# one request. Hidden, stopped, only the gateway may print to it, and like the hold queue its
# device cannot print; jobs a crash leaves here go back to the hold queue at the next tap.
lpadmin -p "$STAGING" -E -v "socket://127.0.0.1:9" "$@" \
    -o printer-is-shared=false \
    -o printer-op-policy=secroom \
    -o printer-error-policy=stop-printer \
    -u "allow:$GATEWAY_USER" \
    -D "secroom staging queue for $NAME (do not print here)"
cupsdisable -r "release in progress" "$STAGING"

lpstat -p "$NAME" -p "$RELEASE" -p "$STAGING"
echo "add \"$NAME\" to [printing] printers in the gateway configuration"
