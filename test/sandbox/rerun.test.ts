// Re-running always finishes: a run killed where CI runners kill them, re-run as it was, reaches a running platform
// with nothing typed in between.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { eventually, useSandbox, onGeneration, TEST_RESYNC_SECONDS } from '../helpers/sandbox.js'
import { cliFor, sandboxFlags } from '../helpers/cli.js'
import { helmRunsOf } from '../../src/cluster/helm.js'

describe(onGeneration('re-running after a kill'), () => {
  // core-provider's pod starts slowly, so the bootstrap helm run (--wait) is still in flight when the kill lands.
  const { sandbox, kube } = useSandbox({
    engineSettings: { resyncSeconds: TEST_RESYNC_SECONDS, readinessDelaySeconds: { krateo: 30 } },
  })
  const { cli, kc } = cliFor(sandbox)
  const pendingRelease = async () =>
    (
      await kube().core.listNamespacedSecret({ namespace: 'krateo-system', labelSelector: 'owner=helm,name=krateo' })
    ).items.map((s) => s.metadata!.labels!.status)

  it('an install killed with its helm run inside the bootstrap release finishes when run again', async () => {
    const args = ['install', ...sandboxFlags(sandbox()), '--exposure', 'LoadBalancer', '--timeout', '5m']
    const first = cli(args)
    await eventually(
      'the bootstrap release is being installed',
      async () => (await pendingRelease().catch((): (string | undefined)[] => [])).includes('pending-install'),
      120_000,
      100,
    )
    // A CI runner cancelling the job kills the whole process tree: the CLI and the helm it started.
    // This sandbox's only: files run two at a time, and another sandbox may be installing a release named krateo too.
    const helms = helmRunsOf('krateo', 'krateo-system', { kubeconfig: sandbox().kubeconfig })
    assert.ok(helms.length > 0, 'helm is running the bootstrap release')
    first.kill('SIGKILL')
    for (const pid of helms) process.kill(pid, 'SIGKILL')
    await first
    assert.deepEqual(await pendingRelease(), ['pending-install'])
    await sandbox().setEngineSettings({ readinessDelaySeconds: {} })

    const again = await cli(args)
    assert.equal(again.code, 0, `${again.stdout}\n${again.stderr}`)
    assert.match(again.stderr, /took over the krateo-installer lock: install by .* is no longer running/)
    assert.match(
      again.stdout,
      /release krateo was left pending-install by a killed run: removing that first revision \(hooks skipped\) to install it again/,
    )
    const status = await cli(['status', ...kc(), '-o', 'json'])
    assert.equal(status.code, 0, status.stdout)
    assert.equal((JSON.parse(status.stdout) as { phase: string }).phase, 'Ready')
    assert.deepEqual(await pendingRelease(), ['deployed'])
  })

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
