#!/usr/bin/env -S node --import tsx --no-warnings
// Runs the CLI from its TypeScript sources, without a build: for development only. oclif is pointed at the
// sources of the command table and the hook that the build bundles and compiles (package.json oclif).
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { execute } from '@oclif/core'

const pjson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
pjson.oclif.commands = { ...pjson.oclif.commands, target: './src/entry/commands.ts' }
pjson.oclif.hooks = { command_not_found: './src/hooks/command-not-found.ts' }
const root = fileURLToPath(new URL('..', import.meta.url))
await execute({ dir: import.meta.url, loadOptions: { root, pjson, ignoreManifest: true } })
