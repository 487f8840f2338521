#!/usr/bin/env bash
# Install the Debian / Raspberry Pi OS packages secroom needs (used by `make demo` and `make test`).
# As root it installs what is missing; otherwise it prints the exact command to run and fails.
set -euo pipefail

want=(
  python3-venv python3-dev gcc make pkg-config swig
  libpcsclite-dev pcscd vsmartcard-vpcd pcsc-tools  # PC/SC readers, the virtual card driver, pcsc_scan
  mosquitto mosquitto-clients                    # MQTT broker (tests and demo start their own)
  cups libcups2-dev                              # print release (pycups builds against libcups)
  fonts-noto-cjk fonts-ipaexfont-gothic poppler-utils  # Japanese PDFs and their checks
  libsystemd-dev                                 # python-systemd (the host agent reads the journal)
)
if [[ "${SECROOM_DEPS:-test}" == "test" ]]; then
  want+=(chromium restic)                        # browser tests; the backup benchmark's anchor
  # the host agent's tests: PAM (pamtester, pam_wrapper), journal files, logind's stand-in
  # (python-dbusmock on a private dbus-daemon), auditd and laurel
  want+=(pamtester libpam-wrapper systemd-journal-remote dbus python3-dbusmock auditd laurel)
  want+=(postgresql)                             # initdb and postgres: the tests run a private cluster
  want+=(prometheus python3-systemd)             # promtool checks the alert rules; sd_notify via python-systemd
  want+=(haproxy)                                # the central install's load balancer config, run by a test
  want+=(ffmpeg motion)                          # cameras: a test-pattern camera and Motion as the NVR
fi

missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "secroom needs these Debian packages, which are not installed:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  echo "run that command (or run make as root), then run make again." >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
# The packaged daemons are not needed as system services: tests and the demo start private ones.
