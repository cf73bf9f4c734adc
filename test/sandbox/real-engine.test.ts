// The real lane: the CLI against the real Gen S engine (core-provider 0.26.1, composition-dynamic-controller
// 0.20.2, chart-inspector 0.2.0 running as processes beside the sandbox's control plane; sandbox/README.md).
// What the simulator claims is proved here against the engine itself.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { eventually, useSandbox } from '../helpers/sandbox.js'
import { cliFor, sandboxFlags } from '../helpers/cli.js'
import { coreProviderStoppedInStage2, killedAfterHelmUninstall, killedInsideBootstrap } from '../helpers/scenarios.js'

interface StatusDoc {
  phase: string
  installerVersion?: string
  components: { name: string; enabled: boolean; stage: string; version: string }[]
}

describe('the real Gen S engine', () => {
  const { sandbox, kube } = useSandbox({ engineKind: 'real', generation: 'S' })
  const { cli, kc } = cliFor(sandbox)
  const status = async () => JSON.parse((await cli(['status', ...kc(), '-o', 'json'])).stdout) as StatusDoc

  it('install (Ctrl-C, run again) -> status Ready -> upgrade -> uninstall (Ctrl-C; killed after helm uninstall; run again) -> --purge leaves nothing of the platform', async () => {
    // Ctrl-C while install follows the self-reconcile (a component Ready, others not yet): the same command resumes.
    const args = ['install', ...sandboxFlags(sandbox()), '--exposure', 'LoadBalancer', '--timeout', '15m']
    let seen = ''
    const first = cli(args, (s) => {
      seen += s
    })
    await eventually(
      'a component Ready while install follows',
      async () => /^\S+ {3}[\w-]+: Ready$/m.test(seen),
      900_000,
      50,
    )
    first.kill('SIGINT')
    const cut = await first
    assert.equal(cut.code, 9, cut.stdout + cut.stderr)
    assert.match(
      cut.stderr,
      /^Error: interrupted; nothing is half-applied; run the same install command again to resume$/m,
    )
    const install = await cli(args)
    assert.equal(install.code, 0, `${install.stdout}\n${install.stderr}`)
    const ready = await status()
    assert.equal(ready.phase, 'Ready', JSON.stringify(ready))
    const enabled = ready.components.filter((c) => c.enabled)
    assert.ok(enabled.length > 5 && enabled.every((c) => c.stage === 'ready'), JSON.stringify(ready.components))
    // The engine really ran: core-provider generated each kind's CRD and started a cdc per definition as processes.
    const { items: pods } = await kube().core.listNamespacedPod({
      namespace: 'krateo-system',
      fieldSelector: 'spec.nodeName=process-node-0',
    })
    assert.ok(
      pods.some((p) => p.metadata!.name!.startsWith('installers-v0-2-53-controller')),
      pods.map((p) => p.metadata!.name).join(', '),
    )

    // Versions move: the real core-provider bumps each moved kind's CRD (conversion webhook, vacuum storage).
    const upgrade = await cli(['upgrade', ...sandboxFlags(sandbox(), '0.2.54'), '--yes', '--timeout', '15m'])
    assert.equal(upgrade.code, 0, `${upgrade.stdout}\n${upgrade.stderr}`)
    const upgraded = await status()
    assert.equal(upgraded.phase, 'Ready', JSON.stringify(upgraded))
    assert.equal(upgraded.components.find((c) => c.name === 'authn')?.version, '0.22.1')

    // Ctrl-C while Stage 1 drains; the next run is killed (kill -9) after its helm uninstall, before the sweep; the
    // one after that finishes, the sweep included.
    let draining = ''
    const uninstalling = cli(['uninstall', ...kc(), '--yes', '--timeout', '10m'], (s) => {
      draining += s
    })
    await eventually('Stage 1 drains', async () => /^\S+ {3}[\w-]+: deleting/m.test(draining), 600_000, 50)
    uninstalling.kill('SIGINT')
    const interrupted = await uninstalling
    assert.equal(interrupted.code, 9, interrupted.stdout + interrupted.stderr)
    assert.match(
      interrupted.stderr,
      /^Error: interrupted; nothing is half-removed; run the same uninstall command again to continue$/m,
    )
    // The real core-provider's webhook is named after its release (chart core-provider, fullname).
    const uninstalled = await killedAfterHelmUninstall({ sandbox, kube, ...cliFor(sandbox) }, ['krateo-core-provider'])
    await eventually('no platform left', async () => (await status()).phase === 'NotInstalled', 60_000, 1000)
    const krateoCrds = async () =>
      (await kube().crds.listCustomResourceDefinition()).items
        .map((c) => c.metadata!.name!)
        .filter((n) => n.endsWith('.krateo.io'))
    // The real core-provider-crd chart ships its CRD in crds/, which helm never deletes: the one residue, named with
    // the command that removes it, and removed by --purge.
    assert.deepEqual(await krateoCrds(), ['compositiondefinitions.core.krateo.io'])
    assert.match(uninstalled, /kubectl delete crd compositiondefinitions\.core\.krateo\.io/)
    const purge = await cli(['uninstall', ...kc(), '--purge', '--yes'])
    assert.equal(purge.code, 0, `${purge.stdout}\n${purge.stderr}`)
    assert.deepEqual(await krateoCrds(), [])
  })

  // Re-running always finishes, on the real engine as on the simulator (rerun.test.ts, uninstall.test.ts).
  it('an install killed with its helm run inside the bootstrap release finishes when run again', () =>
    killedInsideBootstrap({ sandbox, kube, ...cliFor(sandbox) }))

  it('core-provider stopped while Stage 2 waits: uninstall names it (exit 7); --force --yes finishes, removing the generated CRDs itself', () =>
    coreProviderStoppedInStage2({ sandbox, kube, ...cliFor(sandbox) }, { slowStage2: false, timeout: '2m' }))
})
