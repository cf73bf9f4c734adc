#!/usr/bin/env bash
# The demo on a fresh machine: set-up, a sandbox up (real control plane + Krateo engine simulator), then
# krateo-installer install, status, upgrade (0.2.53 -> 0.2.54) and uninstall against it, and the sandbox down.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
name=demo-$$
sandbox() { node --import tsx sandbox/cli.ts "$@" --name "$name"; }
trap 'sandbox down >/dev/null 2>&1 || true' EXIT
sandbox up
sandbox facts
eval "$(sandbox env)"   # KUBECONFIG, HELM_BIN and helm's dirs for this sandbox; SANDBOX_REGISTRY
chart=(--chart "oci://$SANDBOX_REGISTRY/charts/installer" --version 0.2.53 --plain-http)
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

step krateo-installer install --exposure LoadBalancer
./bin/run.js install --exposure LoadBalancer "${chart[@]}"
step krateo-installer status
./bin/run.js status
step krateo-installer check
./bin/run.js check
step krateo-installer upgrade --version 0.2.54 --dry-run
./bin/run.js upgrade --version 0.2.54 --plain-http --dry-run
step krateo-installer upgrade --version 0.2.54 --yes
./bin/run.js upgrade --version 0.2.54 --plain-http --yes
step krateo-installer uninstall --dry-run
./bin/run.js uninstall --dry-run
step krateo-installer uninstall --yes
./bin/run.js uninstall --yes
step krateo-installer status
./bin/run.js status || echo "(exit $?: not installed)"
sandbox down
trap - EXIT
