#!/usr/bin/env bash
# The whole test suite: installs what the interoperability tests need (scripts/test-deps.sh),
# then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test-deps.sh
exec cargo test --workspace "$@"
