#!/usr/bin/env bash
# Make Chromium and its chromedriver available for the browser tests (tests/browser), where
# that is possible without asking: as root with apt-get (CI containers, Debian/Ubuntu), install
# the distribution's `chromium` and `chromium-driver` quietly. Anywhere else print one line
# saying that the browser tests will skip. Never fails: the test command must not stop here.
#
#   scripts/ensure-chromium.sh && python -m pytest
#
# No browser is downloaded by the tests themselves; they use what is on PATH.
set -u

have_browser() {
    { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
        || command -v google-chrome >/dev/null 2>&1; } && command -v chromedriver >/dev/null 2>&1
}

if have_browser; then
    exit 0
fi

if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
    echo "mtlkit: installing chromium and chromium-driver with apt-get for the browser tests" >&2
    if (export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver) \
        >/tmp/mtlkit-ensure-chromium.log 2>&1 && have_browser; then
        exit 0
    fi
    echo "mtlkit: could not install chromium (see /tmp/mtlkit-ensure-chromium.log); browser tests will skip" >&2
    exit 0
fi

echo "mtlkit: no chromium + chromedriver found (Debian: apt-get install chromium chromium-driver); browser tests will skip" >&2
exit 0
