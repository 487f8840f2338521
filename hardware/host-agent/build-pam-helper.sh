#!/usr/bin/env bash
# Build the PAM helper secroom-pam-card (hardware/host-agent/pam/secroom-pam-card.c) with gcc.
#
#   hardware/host-agent/build-pam-helper.sh [OUTPUT]     (default: build/secroom-pam-card)
#
# It needs only gcc and the C library (Debian: apt-get install gcc). Install the result with
#   sudo install -m 0755 -o root -g root build/secroom-pam-card /usr/lib/secroom/secroom-pam-card
# The binary is never committed: the Makefile's venv step and the tests build it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/../../build/secroom-pam-card}"
CC="${CC:-gcc}"
if ! command -v "$CC" >/dev/null 2>&1; then
  echo "build-pam-helper.sh: $CC not found: install it (sudo apt-get install -y gcc)" >&2
  exit 1
fi
mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
"$CC" -std=c11 -O2 -Wall -Wextra -Werror -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE -pie \
  -Wl,-z,relro,-z,now -o "$tmp" "$here/pam/secroom-pam-card.c"
chmod 0755 "$tmp"
mv -f "$tmp" "$out"
trap - EXIT
echo "built $out"
