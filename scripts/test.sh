#!/usr/bin/env bash
# The test command: sets up a fresh machine, builds, then runs every test: unit tests (no root),
# kernel tests (real BPF in namespaces the tests create) and CLI end-to-end tests. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "TCPLENS_ERR_NOT_ROOT: the kernel tests load BPF programs and create namespaces" >&2
  echo "  hint: sudo $0" >&2
  exit 1
fi
./scripts/setup.sh --tests
# One test file at a time: kernel tests count programs and attachments they made. Every test and
# every file has a time limit, so a hang fails within minutes and names itself.
node --test --test-concurrency=1 --test-timeout=480000 dist/test/unit/ dist/test/kernel/ dist/test/e2e/
