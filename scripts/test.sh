#!/usr/bin/env bash
# The whole test suite: set-up, lint, type check, unit tests and the tests against real sandboxes.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
bash scripts/setup.sh
npm run -s lint
npm run -s typecheck
# One runner invocation for unit and sandbox tests, so there is one summary. Two files at a time: a sandbox
# file mostly waits on its engine (its control plane idles between reconciles), so two share 2 cores well.
# KRATEO_TEST_CONCURRENCY=1 runs them one by one.
# (Node 20's runner does not expand globs itself.)
# Node 20's runner starts the files in path order whatever order they are given in (seen in the output of a run
# given them longest first), so the long ones are not put first here: the timing table shows where the time goes.
mapfile -t files < <(find test/unit test/sandbox -name '*.test.ts' | sort)
# Sandboxes running before the tests (a developer's own) are not the tests' business.
before=$(pgrep -f 'krateo-sandbox-' | sort || true)
# The spec reporter on stdout; where the time went (per file, the ten slowest tests) on stderr at the end.
node --import tsx --test --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=./scripts/timing-reporter.mjs --test-reporter-destination=stderr \
  --test-concurrency="${KRATEO_TEST_CONCURRENCY:-2}" --test-timeout=1800000 "${files[@]}"
sleep 1
leftover=$(comm -13 <(echo "$before") <(pgrep -f 'krateo-sandbox-' | sort) | xargs -r ps -o pid=,args= -p || true)
if [ -n "$leftover" ]; then
  echo "processes left behind by the tests:" >&2
  echo "$leftover" >&2
  exit 1
fi
echo "npm test passed in $(((SECONDS - started) / 60))m$(printf %02d $(((SECONDS - started) % 60)))s, set-up, lint and types included" >&2
