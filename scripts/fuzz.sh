#!/usr/bin/env bash
# Runs every Go fuzz target in the repository, one after the other, each for
# FUZZTIME (default 60s; any -fuzztime value: 30s, 2m, 10000x).
#   scripts/fuzz.sh [REGEXP]   only targets whose package/name matches REGEXP
# Targets are found, not listed here: every package with a `func Fuzz` in a
# *_test.go file is asked for its targets with `go test -list`. A failing
# input stays where `go test` writes it (PKG/testdata/fuzz/FuzzName/), so
# plain `go test` replays it from then on; commit it with the fix.
# Env: FUZZTIME, FUZZPARALLEL (workers per target; default: GOMAXPROCS),
# FUZZMINIMIZETIME (default 10s: go's 60s per new input can eat a short run).
# Exit: 0 all passed, 1 a target failed (or could not build), 2 usage.
set -uo pipefail
export PATH=/usr/local/go/bin:$PATH
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-60s}
filter=${1:-}
if [ $# -gt 1 ]; then echo "usage: $0 [REGEXP]" >&2; exit 2; fi

# The test binary's -timeout covers the whole fuzzing run: FUZZTIME plus
# room to build and to minimise a failing input.
# The number is checked before any arithmetic: 1.5m would be a shell error.
num=${fuzztime%[smhx]}
case "$num" in
  *[!0-9]*|"") echo "fuzz: FUZZTIME=$fuzztime: want whole seconds, minutes or hours (30s, 2m, 1h) or a count (1000x)" >&2; exit 2 ;;
esac
case "${fuzztime#"$num"}" in
  s) secs=$(( 10#$num )) ;;
  m) secs=$(( 10#$num * 60 )) ;;
  h) secs=$(( 10#$num * 3600 )) ;;
  x) secs=1800 ;;
  *) echo "fuzz: FUZZTIME=$fuzztime is not a duration (30s, 2m, 1h) or a count (1000x)" >&2; exit 2 ;;
esac
timeout="$(( secs + 600 ))s"

# Test files git knows (tracked or not ignored); outside a checkout, all.
files=$(git ls-files -co --exclude-standard -- '*_test.go' 2>/dev/null) ||
  files=$(find . -name '*_test.go' -not -path './.git/*' | sed 's|^\./||')
dirs=$(echo "$files" | xargs -r grep -l '^func Fuzz[A-Z0-9_a-z]*(' | xargs -r -n1 dirname | sort -u)
targets=()
for d in $dirs; do
  list=$(go test -list '^Fuzz' "./$d" 2>&1) || { echo "fuzz: go test -list ./$d failed:" >&2; echo "$list" >&2; exit 1; }
  for name in $(echo "$list" | grep -E '^Fuzz[A-Za-z0-9_]*$'); do
    if [ -z "$filter" ] || echo "$d/$name" | grep -qE -- "$filter"; then
      targets+=("$d $name")
    fi
  done
done
if [ "${#targets[@]}" -eq 0 ]; then
  echo "fuzz: no fuzz targets found${filter:+ matching $filter}" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, $fuzztime each"

par=()
[ -n "${FUZZPARALLEL:-}" ] && par=(-parallel "$FUZZPARALLEL")
rows=()
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "${targets[@]}"; do
  d=${t% *}; name=${t#* }
  echo "=== $d $name"
  start=$(date +%s)
  go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -fuzzminimizetime "${FUZZMINIMIZETIME:-10s}" \
    -timeout "$timeout" "${par[@]}" "./$d" >"$log" 2>&1
  rc=$?
  took=$(( $(date +%s) - start ))s
  # The last progress line: "fuzz: elapsed: 30s, execs: 123 (4/sec), new interesting: 5 (total: 9)".
  stats=$(grep -E '^fuzz: elapsed: .*execs:' "$log" | tail -1 | sed -E 's/^fuzz: elapsed: [^,]*, //; s/ \([0-9]+\/sec\)//')
  if [ $rc -eq 0 ]; then
    result=ok
    tail -1 "$log"
  else
    failed=1
    result=FAIL
    cat "$log"
    kept=$(grep -oE 'Failing input written to testdata/fuzz/[^ :]+' "$log" | head -1 | sed 's/^Failing input written to //')
    [ -n "$kept" ] && result="FAIL (input kept: $d/$kept)"
  fi
  rows+=("$d|$name|$took|${stats:--}|$result")
done

echo
echo "fuzz summary (FUZZTIME=$fuzztime)"
{
  echo "PACKAGE|TARGET|TOOK|EXECS / NEW INTERESTING|RESULT"
  printf '%s\n' "${rows[@]}"
} | awk -F'|' '{ for (i = 1; i <= NF; i++) { c[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } n = NR; nf = NF }
  END { for (r = 1; r <= n; r++) { line = ""; for (i = 1; i <= nf; i++) line = line sprintf(i < nf ? "%-" w[i] "s  " : "%s", c[r, i]); print line } }'
exit $failed
