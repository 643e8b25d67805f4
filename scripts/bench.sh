#!/usr/bin/env bash
# Boot benchmark: banger vs a hand-rolled QEMU boot of the same artifacts.
# Writes docs/benchmarks.md. Needs root (network namespace) like the e2e tests.
set -euo pipefail
cd "$(dirname "$0")/.."
BANGER_E2E=1 BANGER_BENCH=1 go test -count=1 -timeout 30m -v -run "TestBench" ./e2e/
