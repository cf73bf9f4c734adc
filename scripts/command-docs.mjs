// docs/commands.md, generated from the built CLI's own --help for every command (oclif.manifest.json), so the
// reference cannot drift from the flags: `npm run docs` writes it, and a unit test fails when it is stale.
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const repo = dirname(dirname(fileURLToPath(import.meta.url)))

export function commandDocs() {
  const manifest = JSON.parse(readFileSync(join(repo, 'oclif.manifest.json'), 'utf8'))
  const help = (args) =>
    execFileSync(process.execPath, [join(repo, 'bin', 'run.js'), ...args], {
      env: { ...process.env, NO_COLOR: '1', COLUMNS: '120' },
      encoding: 'utf8',
    })
      // The VERSION block names this machine's platform and Node.js: not the CLI's reference.
      .replace(/^VERSION\n(?: {2}.*\n)+\n/m, '')
      .trimEnd()
  const parts = [
    '# Command reference',
    '',
    'Generated from `krateo-installer <command> --help` by `npm run docs`; do not edit by hand.',
    '',
    '```',
    help(['--help']),
    '```',
  ]
  for (const id of Object.keys(manifest.commands).sort())
    parts.push('', `## ${id}`, '', '```', help([id, '--help']), '```')
  return `${parts.join('\n')}\n`
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(join(repo, 'docs', 'commands.md'), commandDocs())
  console.log('wrote docs/commands.md')
}
