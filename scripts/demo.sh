#!/usr/bin/env bash
# The demo on a fresh machine: set-up, a sandbox up, what the cluster looks like, the sandbox down.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
name=demo-$$
sandbox() { node --import tsx sandbox/cli.ts "$@" --name "$name"; }
trap 'sandbox down >/dev/null 2>&1 || true' EXIT
sandbox up
sandbox facts
sandbox down
trap - EXIT
