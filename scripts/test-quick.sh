#!/usr/bin/env bash
# The quick loop, for every commit: set-up (cached after the first run), lint, types, unit tests and one sandbox
# smoke test (install -> status -> uninstall on the simulator). `npm test` stays the whole suite and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
bash scripts/setup.sh
npm run -s lint
npm run -s typecheck
mapfile -t files < <(find test/unit test/quick -name '*.test.ts' | sort)
node --import tsx --test --test-reporter=spec --test-concurrency=1 --test-timeout=600000 "${files[@]}"
echo "quick loop passed in $((SECONDS - started))s"
