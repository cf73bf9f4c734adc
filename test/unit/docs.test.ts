// The command reference is the CLI's own --help: a flag added without `npm run docs` fails here.
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { repo } from '../helpers/cli.js'

describe('docs', () => {
  it('docs/commands.md is what every command says with --help (run `npm run docs` after changing a flag)', async () => {
    assert.ok(existsSync(join(repo, 'dist', 'commands')), 'the CLI is built (npm run build)')
    const { commandDocs } = (await import(join(repo, 'scripts', 'command-docs.mjs'))) as { commandDocs: () => string }
    assert.equal(commandDocs(), readFileSync(join(repo, 'docs', 'commands.md'), 'utf8'))
  })
})
