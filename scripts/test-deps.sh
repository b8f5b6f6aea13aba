#!/usr/bin/env bash
# Installs what the test suite needs beyond cargo: an SMTP server (aiosmtpd)
# that the mail tests run on loopback. Idempotent and quiet: does nothing when
# everything is already there. Run it before `cargo test` on a fresh machine.
set -euo pipefail

PYTHON="${PYTHON:-python3}"

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-pip >/dev/null
    else
        echo "test-deps: python3 is missing and apt-get is not available" >&2
        exit 1
    fi
fi

if ! "$PYTHON" -c 'import aiosmtpd' >/dev/null 2>&1; then
    if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
        if command -v apt-get >/dev/null 2>&1; then
            apt-get update -qq >/dev/null
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null
        fi
    fi
    # --break-system-packages: Debian's python refuses pip installs otherwise
    # (PEP 668); older pips do not know the flag, so try without it too.
    "$PYTHON" -m pip install -q 'aiosmtpd>=1.4,<2' --break-system-packages 2>/dev/null \
        || "$PYTHON" -m pip install -q 'aiosmtpd>=1.4,<2'
    "$PYTHON" -c 'import aiosmtpd' || {
        echo "test-deps: aiosmtpd did not install" >&2
        exit 1
    }
fi
