#!/usr/bin/env bash
# Installs what the interoperability, browser, PDF and S3 tests need beyond Rust: an independent
# WebRTC stack (aiortc, with numpy to look at decoded pixels) for tests/interop/, and for the
# browser tests (tests/browser/) Debian's Chromium, Node.js with npm, and the npm packages
# pinned in tests/browser/package-lock.json (playwright-core, which drives the system
# Chromium and never downloads a browser, and axe-core).
# Safe to run again: it installs only what is missing or stale. Without root, it installs
# what it can and says what it could not.
set -euo pipefail
cd "$(dirname "$0")/.."

can_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }
apt_updated=
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "$apt_updated" ]; then
    apt-get update -qq
    apt_updated=1
  fi
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! python3 -c 'import aiortc, numpy' 2>/dev/null; then
  echo "== installing aiortc and numpy (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check aiortc numpy
fi

if ! command -v chromium >/dev/null 2>&1; then
  if can_apt; then
    echo "== installing chromium (Debian)"
    apt_install chromium
  else
    echo "!! chromium is not installed and this user cannot install it: the browser tests will be skipped" >&2
  fi
fi

if ! command -v pdftotext >/dev/null 2>&1 || ! command -v pdftoppm >/dev/null 2>&1; then
  if can_apt; then
    echo "== installing poppler-utils (Debian): pdftotext and pdftoppm read the minutes' PDF back"
    apt_install poppler-utils
  else
    echo "!! pdftotext is not installed and this user cannot install it: the PDF is read back by the server's own extractor" >&2
  fi
fi

# An S3-compatible server over a folder, for the blob store's S3 tests (tests/documents.rs).
# Version 0.14.1 is the newest that builds with this machine's Rust (1.95).
s3s_root="$HOME/.cache/s3s"
if [ ! -x "$s3s_root/bin/s3s-fs" ]; then
  echo "== installing s3s-fs 0.14.1 (crates.io) into $s3s_root: an S3 server for the document store's tests"
  cargo install s3s-fs --version 0.14.1 --features binary --locked --root "$s3s_root" --quiet
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if can_apt; then
    echo "== installing nodejs and npm (Debian)"
    apt_install nodejs npm
  else
    echo "!! node or npm is not installed and this user cannot install them: the browser tests will be skipped" >&2
  fi
fi

browser=tests/browser
if command -v npm >/dev/null 2>&1; then
  # playwright-core refuses to start on a Node.js older than 20.
  major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$major" -lt 20 ]; then
    echo "!! node $(node --version) is too old for playwright-core (20 or newer): the browser tests will fail or be skipped" >&2
  fi
  # npm writes node_modules/.package-lock.json on every install: it is newer than the
  # committed lock file exactly when node_modules matches it.
  if [ ! -f "$browser/node_modules/.package-lock.json" ] ||
    [ "$browser/package-lock.json" -nt "$browser/node_modules/.package-lock.json" ]; then
    echo "== installing the browser tests' npm packages (npm ci)"
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix "$browser" --no-audit --no-fund --loglevel=error >/dev/null
  fi
fi
