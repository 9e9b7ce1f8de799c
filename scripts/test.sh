#!/usr/bin/env bash
# Builds the solution and runs every test project; prints "N passed, N failed[, N skipped]".
set -uo pipefail
cd "$(dirname "$0")/.."

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

if ! dotnet build BigFS.Mount.sln -c Release -v q -nologo; then
  echo "build failed" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

# One test project at a time (-m:1): the mount suites put real load on this 2-core machine,
# and failures must show their messages (console logger, minimal verbosity). A test silent for
# 10 minutes is a hang: the blame collector names it, dumps the host and fails the run.
dotnet test BigFS.Mount.sln -c Release --no-build -v q -nologo -m:1 --blame-hang-timeout 10m \
  --logger "trx" --logger "console;verbosity=minimal" --results-directory "$results" "$@"
status=$?

passed=0; failed=0; skipped=0
for trx in "$results"/*.trx; do
  [ -e "$trx" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -1)
  get() { printf '%s' "$counters" | grep -o " $1=\"[0-9]*\"" | grep -o '[0-9]*'; }
  total=$(get total); executed=$(get executed); p=$(get passed); f=$(get failed); e=$(get error); t=$(get timeout); a=$(get aborted)
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0} + ${e:-0} + ${t:-0} + ${a:-0}))
  skipped=$((skipped + ${total:-0} - ${executed:-0}))
done
if [ $status -ne 0 ] && [ $failed -eq 0 ]; then
  failed=1   # the runner failed without a counted failure (crash, hang, build of a test host)
fi
if [ $skipped -gt 0 ]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
[ $status -eq 0 ] && [ $failed -eq 0 ]
