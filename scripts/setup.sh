#!/usr/bin/env bash
# Installs what the project needs on a fresh machine: npm dependencies and the sandbox's Go-built
# binaries (cached under ~/.cache/krateo-installer, so only the first run builds), then builds the CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null || export PATH="$PATH:/usr/local/go/bin"
stamp=node_modules/.package-lock.stamp
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi
bash sandbox/build.sh
npm run -s build
