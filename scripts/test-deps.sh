#!/usr/bin/env bash
# Installs what the interoperability tests need beyond Rust: an independent WebRTC stack
# (aiortc, with numpy to look at decoded pixels), and for the browser test Debian's Chromium
# and the websockets package that drives it over the DevTools protocol.
# Safe to run again: it installs only what is missing. Without root, it installs what it can
# and says what it could not.
set -euo pipefail

if ! python3 -c 'import aiortc, numpy, websockets' 2>/dev/null; then
  echo "== installing aiortc, numpy and websockets (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check aiortc numpy websockets
fi

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing chromium (Debian)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
  else
    echo "!! chromium is not installed and this user cannot install it: the browser test will be skipped" >&2
  fi
fi
