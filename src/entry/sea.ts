// The single executable (Node's single executable applications): one file with Node and this CLI, for CI
// images without Node. oclif finds commands and hooks by file path; here there are no files, so the
// package.json oclif reads is written to a private cache directory, commands are discovered "explicitly"
// from an in-memory map, and the loader's require of those paths is answered from memory (the banner of
// the bundle routes require through globalThis.__seaModules; see scripts/package.sh).
import { mkdirSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import pjson from '../../package.json' with { type: 'json' }

declare global {
  var __seaModules: Record<string, unknown> | undefined
}
/** The root help the build rendered (dist/root-help.txt), put in by scripts/package.sh. */
declare const __ROOT_HELP__: string | undefined

async function main(): Promise<void> {
  // The root help needs none of the CLI's modules (as bin/run.js serves it): they are loaded only past here.
  const args = process.argv.slice(2)
  const rootHelp = typeof __ROOT_HELP__ === 'string' ? __ROOT_HELP__ : ''
  if (rootHelp && (args.length === 0 || (args.length === 1 && (args[0] === '--help' || args[0] === '-h')))) {
    process.stdout.write(rootHelp, () => process.exit(0))
    return
  }
  const [{ execute }, { commands: helpCommands }, { default: hook }, { COMMANDS }] = await Promise.all([
    import('@oclif/core'),
    import('@oclif/plugin-help'),
    import('../hooks/command-not-found.js'),
    import('./commands.js'),
  ])
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
    [join(root, 'commands.js')]: { COMMANDS: { ...COMMANDS, ...helpCommands } },
    [join(root, 'hook.js')]: { default: hook },
  }
  await execute({ dir: join(root, 'package.json') })
  process.stdout.write('', () => process.exit())
}

void main()
