#!/usr/bin/env bash
# Benchmarks; each writes its section of docs/benchmarks.md. Needs root
# (network namespaces) like the e2e tests. Numbers are reported, never asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
export BANGER_BENCH=1 BANGER_E2E=1
go test -count=1 -timeout 10m -v -run 'TestBench' ./internal/daemon/
go test -count=1 -timeout 60m -v -run 'TestBench' ./e2e/
