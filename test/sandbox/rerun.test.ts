// Re-running always finishes: a run killed where CI runners kill them, re-run as it was, reaches a running platform
// with nothing typed in between.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { eventually, useSandbox, onGeneration, TEST_RESYNC_SECONDS } from '../helpers/sandbox.js'
import { cliFor, sandboxFlags } from '../helpers/cli.js'
import { killedInsideBootstrap } from '../helpers/scenarios.js'

describe(onGeneration('re-running after a kill'), () => {
  const { sandbox, kube } = useSandbox({ engineSettings: { resyncSeconds: TEST_RESYNC_SECONDS } })
  const { cli, kc } = cliFor(sandbox)

  it('an install killed with its helm run inside the bootstrap release finishes when run again', () =>
    killedInsideBootstrap({ sandbox, kube, ...cliFor(sandbox) }))

  it('an install whose API server goes away for 8 s (a control-plane restart) carries on and reaches Ready', async () => {
    const gone = await cli(['uninstall', ...kc(), '--timeout', '5m'])
    assert.equal(gone.code, 0, gone.stdout + gone.stderr)
    let seen = ''
    const run = cli(['install', ...sandboxFlags(sandbox()), '--exposure', 'LoadBalancer', '--timeout', '5m'], (c) => {
      seen += c
    })
    await eventually(
      'the install follows the self-reconcile',
      async () => /▶ Follow the self-reconcile/.test(seen),
      180_000,
      100,
    )
    await sandbox().restartApiServer(8000)
    const res = await run
    assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}`)
    assert.match(res.stdout, /API server unreachable for \d+ s, retrying/)
    assert.match(res.stdout, /the API server answers again/)
    const status = await cli(['status', ...kc(), '-o', 'json'])
    assert.equal((JSON.parse(status.stdout) as { phase: string }).phase, 'Ready', status.stdout)
  })
})
