// The real lane: the CLI against the real Gen S engine (core-provider 0.26.1, composition-dynamic-controller
// 0.20.2, chart-inspector 0.2.0 running as processes beside the sandbox's control plane; sandbox/README.md).
// What the simulator claims is proved here against the engine itself: first the engine alone against the contract
// (the simulator's suite, test/helpers/engine-contract.ts), then the CLI on it.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { eventually, useSandbox, helmFor } from '../helpers/sandbox.js'
import { cliFor, sandboxFlags } from '../helpers/cli.js'
import {
  coreProviderStoppedInStage2,
  helmReleases,
  interruptedAt,
  killedAfterHelmUninstall,
  killedInsideBootstrap,
} from '../helpers/scenarios.js'
import { bumpedBlueprintUnreadableAfter, purgeKeepsUserObjects } from '../helpers/user-objects.js'
import { contractSuite } from '../helpers/engine-contract.js'

interface StatusDoc {
  phase: string
  installerVersion?: string
  components: { name: string; enabled: boolean; stage: string; version: string }[]
}

// One real-engine sandbox per machine (core-provider's fixed ports): the suites run one after the other, each in
// its own sandbox.
describe('the engine against the contract [real engine]', () => contractSuite('real'))

describe('the real Gen S engine', () => {
  const { sandbox, kube } = useSandbox({ engineKind: 'real', generation: 'S' })
  const { cli, kc } = cliFor(sandbox)
  const status = async () => JSON.parse((await cli(['status', ...kc(), '-o', 'json'])).stdout) as StatusDoc
  const helm = helmFor(sandbox)

  it('plain helm install (release "installer"), adopted by install (Ctrl-C, run again) -> status Ready -> upgrade -> uninstall (Ctrl-C; killed after helm uninstall; run again) -> --purge leaves nothing of the platform', async () => {
    // The chart's documented way, without --wait: helm returns once its post-install hook applied the installer
    // definition and the Installer; the platform is still on its way (the real engine's 3-minute resync per layer).
    helm(
      'install',
      'installer',
      `oci://${sandbox().registry}/charts/installer`,
      '--version',
      '0.2.53',
      ...sandbox().registryFlags,
      '-n',
      'krateo-system',
      '--create-namespace',
      '--set',
      'exposure.type=LoadBalancer',
      '--timeout',
      '10m',
    )
    // install adopts it and follows the self-reconcile; Ctrl-C while it does (a component Ready, others not yet):
    // the same command resumes.
    const args = ['install', ...sandboxFlags(sandbox()), '--timeout', '15m']
    const cut = await interruptedAt(
      { cli },
      args,
      { what: 'a component Ready while install follows', line: /^\S+ {3}[\w-]+: Ready$/m, timeoutMs: 900_000 },
      /^Error: interrupted; nothing is half-applied; run the same install command again to resume$/m,
    )
    const adopts = /a platform installed as helm release "installer" is here: install adopts it, keeping its values/
    assert.match(cut.stdout, adopts)
    const install = await cli(args)
    assert.equal(install.code, 0, `${install.stdout}\n${install.stderr}`)
    assert.match(install.stdout, adopts)
    const releases = helmReleases({ sandbox }).map((r) => r.name)
    assert.ok(
      releases.includes('installer') && !releases.includes('krateo'),
      `one bootstrap release, the adopted one, with the values it was installed with: ${releases.join(', ')}`,
    )
    assert.match(helm('get', 'values', 'installer', '-n', 'krateo-system'), /type: LoadBalancer/)
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
    await interruptedAt(
      { cli },
      ['uninstall', ...kc(), '--yes', '--timeout', '10m'],
      { what: 'Stage 1 drains', line: /^\S+ {3}[\w-]+: deleting/m, timeoutMs: 600_000 },
      /^Error: interrupted; nothing is half-removed; run the same uninstall command again to continue$/m,
    )
    // The real core-provider's webhook is named after its release (chart core-provider, fullname): here a subchart
    // of the release "installer".
    const uninstalled = await killedAfterHelmUninstall(
      { sandbox, kube, ...cliFor(sandbox) },
      ['installer-core-provider'],
      'installer',
    )
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

  // The ownership suite's first case (ownership.test.ts): the user's blueprint gets its CRD and cdc from the real
  // core-provider, its Composition is rendered by a real cdc.
  it("uninstall --purge --yes beside a user's blueprint, Composition, RestDefinition and look-alikes removes the platform and keeps all of theirs", async () => {
    const t = { sandbox, kube, ...cliFor(sandbox) }
    await t.install()
    await purgeKeepsUserObjects(t, { timeout: '10m', waitMs: 300_000 })
  })

  // The ownership suite's last case: the user's blueprint moved to a new version, so the real core-provider put its
  // conversion webhook on the user's kind; uninstall asks first and says what becomes unreadable. Last: the webhook
  // stays on that kind.
  it("a user's blueprint moved to a new version reads through core-provider: uninstall names it, asks first, and it is unreadable after", async () => {
    const t = { sandbox, kube, ...cliFor(sandbox) }
    await t.install()
    await bumpedBlueprintUnreadableAfter(t, { timeout: '10m', waitMs: 300_000 })
  })
})
