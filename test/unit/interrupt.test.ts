// A throw nobody caught while a command runs (from a timer, say) still ends the run cleanly: one line, exit 1,
// and the cleanups of a stop (the run lock given back) run first.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { describe, it } from 'node:test'
import { repo } from '../helpers/cli.js'

const script = `
import { Interrupt } from './src/operations/interrupt.ts'
const i = new Interrupt('run the same command again to resume')
i.onStop(async () => { process.stdout.write('lock released\\n') })
setTimeout(() => { throw new Error('spec.components[3] has no kind\\n    at secret place') }, 10)
setTimeout(() => {}, 5000)
`

describe('interrupt', () => {
  it('a throw from a timer ends with one line and exit 1, after the stop cleanups ran', () => {
    const res = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: repo,
      encoding: 'utf8',
      timeout: 20_000,
    })
    assert.equal(res.status, 1, res.stderr)
    assert.equal(res.stdout, 'lock released\n')
    assert.equal(
      res.stderr.trim(),
      'Error: unexpected failure: spec.components[3] has no kind; re-run with --verbose and report it; run the same command again to resume',
    )
  })
})
