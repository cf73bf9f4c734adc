// The single executable (Node's single executable applications): one file with Node and this CLI, for CI
// images without Node. oclif finds commands and hooks by file path; here there are no files, so the
// package.json oclif reads is written to a private cache directory, commands are discovered "explicitly"
// from an in-memory map, and the loader's require of those paths is answered from memory (the banner of
// the bundle routes require through globalThis.__seaModules; see scripts/package.sh).
import { mkdirSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { execute } from '@oclif/core'
import { commands as helpCommands } from '@oclif/plugin-help'
import pjson from '../../package.json' with { type: 'json' }
import hook from '../hooks/command-not-found.js'
import { OWN_COMMANDS } from './commands.js'

declare global {
  var __seaModules: Record<string, unknown> | undefined
}

async function main(): Promise<void> {
  const root = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'krateo-installer', `exe-${pjson.version}`)
  mkdirSync(root, { recursive: true, mode: 0o700 })
  const { oclif } = pjson as unknown as { oclif: Record<string, unknown> }
  writeFileSync(
    join(root, 'package.json'),
    JSON.stringify({
      name: pjson.name,
      version: pjson.version,
      description: pjson.description,
      oclif: {
        ...oclif,
        plugins: [],
        commands: { strategy: 'explicit', target: './commands.js', identifier: 'COMMANDS' },
        hooks: { command_not_found: './hook.js' },
      },
    }),
  )
  // The loader checks that the files exist before it requires them.
  for (const f of ['commands.js', 'hook.js'])
    writeFileSync(join(root, f), '// answered from memory by the executable\n')
  globalThis.__seaModules = {
    [join(root, 'commands.js')]: { COMMANDS: { ...OWN_COMMANDS, ...helpCommands } },
    [join(root, 'hook.js')]: { default: hook },
  }
  await execute({ dir: join(root, 'package.json') })
  process.stdout.write('', () => process.exit())
}

void main()
