#!/usr/bin/env bash
# The whole test suite: set-up, lint, type check, unit tests and the tests against real sandboxes.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
bash scripts/setup.sh
npm run -s lint
npm run -s typecheck
# One run for unit and sandbox tests, so there is one summary: scripts/run-tests.mjs starts the longest files first
# (by the previous run's times), two at a time: three kept the 2 cores 96% busy but made each file about twice as
# slow, and the run no shorter. KRATEO_TEST_CONCURRENCY=1 runs them one by one.
mapfile -t files < <(find test/unit test/sandbox -name '*.test.ts' | sort)
# Sandboxes running before the tests (a developer's own) are not the tests' business.
before=$(pgrep -f 'krateo-sandbox-' | sort || true)
# The spec reporter on stdout; where the time went (per file, the ten slowest tests) on stderr at the end.
node --import tsx scripts/run-tests.mjs "${files[@]}"
sleep 1
leftover=$(comm -13 <(echo "$before") <(pgrep -f 'krateo-sandbox-' | sort) | xargs -r ps -o pid=,args= -p || true)
if [ -n "$leftover" ]; then
  echo "processes left behind by the tests:" >&2
  echo "$leftover" >&2
  exit 1
fi
echo "npm test passed in $(((SECONDS - started) / 60))m$(printf %02d $(((SECONDS - started) % 60)))s, set-up, lint and types included" >&2
