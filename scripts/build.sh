#!/usr/bin/env bash
# npm run build: the type-checked compile (dist/); over its dist/entry/commands.js, the command table bundled with all
# it imports into one module (what oclif loads; see src/entry/commands.ts; bin/dev.js maps the same path to the
# sources); oclif's manifest; and the root help bin/run.js serves without loading the CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf dist
tsc -p tsconfig.json
# @oclif/core stays outside: bin/run.js and the help plugin load it from node_modules, and the commands must share
# that copy. The banner gives the bundled CommonJS modules their require, __filename and __dirname.
npx esbuild src/entry/commands.ts --bundle --platform=node --format=esm --target=node20 --outfile=dist/entry/commands.js \
  --external:@oclif/core --log-level=warning --legal-comments=none --minify-whitespace --minify-syntax \
  --banner:js="import{createRequire as __cr}from'node:module';import{fileURLToPath as __fu}from'node:url';import{dirname as __dn}from'node:path';const require=__cr(import.meta.url);const __filename=__fu(import.meta.url);const __dirname=__dn(__filename);"
rm -f dist/entry/commands.js.map  # the compile's map, not the bundle's
oclif manifest >/dev/null
NO_COLOR=1 node bin/run.js --help >dist/root-help.txt
