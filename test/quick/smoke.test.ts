// The quick loop's one sandbox test (npm run test:quick): install -> status -> uninstall on the simulator, the
// path every change must keep working. The whole suite (npm test) proves the rest.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { TEST_RESYNC_SECONDS, useSandbox } from '../helpers/sandbox.js'
import { cliFor } from '../helpers/cli.js'

describe('smoke: install -> status -> uninstall', () => {
  const { sandbox } = useSandbox({ engineSettings: { resyncSeconds: TEST_RESYNC_SECONDS } })
  const { cli, kc, install } = cliFor(sandbox)

  it('installs to Ready, says so, and uninstalls to nothing', async () => {
    await install()
    const ready = await cli(['status', ...kc(), '-o', 'json'])
    assert.equal(ready.code, 0, ready.stdout + ready.stderr)
    assert.equal((JSON.parse(ready.stdout) as { phase: string }).phase, 'Ready')
    const gone = await cli(['uninstall', ...kc(), '--yes', '--timeout', '5m'])
    assert.equal(gone.code, 0, gone.stdout + gone.stderr)
    const after = await cli(['status', ...kc(), '-o', 'json'])
    assert.equal(after.code, 10)
    assert.equal((JSON.parse(after.stdout) as { phase: string }).phase, 'NotInstalled')
  })
})
