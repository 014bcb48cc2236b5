#!/usr/bin/env bash
# Every check of the project: type-check, lint, unit tests, and integration tests on real sandboxes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm test
