#!/usr/bin/env node
import { readFileSync } from 'node:fs'

const args = process.argv.slice(2)
// The root help needs none of the CLI's modules: it is served from what the build rendered (package.json
// "build"), so `krateo-installer --help` starts about as fast as Node.js itself.
if (args.length === 0 || (args.length === 1 && (args[0] === '--help' || args[0] === '-h'))) {
  let text
  try {
    text = readFileSync(new URL('../dist/root-help.txt', import.meta.url), 'utf8')
  } catch {
    /* not built with it: oclif renders it */
  }
  if (text) {
    process.stdout.write(text)
    process.exit(0)
  }
}
const { execute } = await import('@oclif/core')
await execute({ dir: import.meta.url })
// Nothing may keep running once the command is done (a watch, a timer): exit once stdout is flushed.
process.stdout.write('', () => process.exit())
