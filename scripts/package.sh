#!/usr/bin/env bash
# npm run package: a single executable for linux-x64, built offline from the local Node (Node's single
# executable applications) and a bundle made by esbuild. Output: dist-exe/krateo-installer.
set -euo pipefail
cd "$(dirname "$0")/.."
out=dist-exe
rm -rf "$out"; mkdir -p "$out"
# The banner answers oclif's require of its explicit command file from memory (scripts/sea-require.js).
banner=$(grep -v '^//' scripts/sea-require.js)
# The root help the build rendered is served without loading the CLI's modules (as bin/run.js does).
[ -f dist/root-help.txt ] || npm run -s build >/dev/null
root_help=$(node -e 'process.stdout.write(JSON.stringify(require("fs").readFileSync("dist/root-help.txt", "utf8")))')
npx esbuild src/entry/sea.ts --bundle --platform=node --target=node20 --format=cjs --outfile="$out/krateo-installer.cjs" \
  --supported:dynamic-import=false --banner:js="$banner" --log-level=warning --legal-comments=none --minify-whitespace --minify-syntax \
  --define:__ROOT_HELP__="$root_help"
# The code cache spares V8 compiling the bundle at every start.
cat > "$out/sea-config.json" <<JSON
{ "main": "$out/krateo-installer.cjs", "output": "$out/sea-prep.blob", "disableExperimentalSEAWarning": true, "useCodeCache": true }
JSON
node --experimental-sea-config "$out/sea-config.json" >/dev/null
cp "$(command -v node)" "$out/krateo-installer"
chmod u+w "$out/krateo-installer"
# The fuse postject flips is the one this Node binary carries (read from it, not assumed).
fuse=$(grep -ao 'NODE_SEA_FUSE_[0-9a-f]*' "$out/krateo-installer" | head -1)
npx postject "$out/krateo-installer" NODE_SEA_BLOB "$out/sea-prep.blob" --sentinel-fuse "$fuse" 2>&1 | grep -v "string offset for section" >&2 || true
grep -aq "${fuse}:1" "$out/krateo-installer" || { echo "package: postject did not inject the blob" >&2; exit 1; }
rm -f "$out/sea-prep.blob" "$out/sea-config.json"
echo "$out/krateo-installer"
