// The chart's own documented path, no CLI in the write path: `helm install installer <chart> ... --wait` runs the
// post-install hook (apply the installer CD and the Installer CR), the engine reconciles the platform to Ready on
// its own, and `helm uninstall installer` runs the pre-delete hooks (bootstrap-teardown deletes the Installer CR,
// whose release's own pre-delete hook installer-ordered-teardown drains the components kind by kind) and the
// post-delete cleanup. The CLI only reads (status), under the chart docs' release name.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { describe, it } from 'node:test'
import { PatchStrategy, RbacAuthorizationV1Api, setHeaderOptions } from '@kubernetes/client-node'
import { eventually, GEN, httpCode, onGeneration, useSandbox } from '../helpers/sandbox.js'
import { runCli, sandboxEnv, sandboxFlags } from '../helpers/cli.js'

const run = promisify(execFile)

describe(onGeneration('the chart installed and removed by plain helm, hooks and all'), () => {
  const ns = 'krateo-system'
  const { sandbox, kube } = useSandbox({
    // No CLI nudges on this path: each dependency layer waits for a resync of the Installer. Only the installer's
    // cdc resyncs fast; the others keep the engine's own (on Gen S each resync is a helm upgrade per Composition).
    engineSettings: { cdcResyncSeconds: { installers: 8 } },
  })
  const helm = (...args: string[]) =>
    run(sandbox().helm, args, { env: { ...process.env, ...sandbox().helmEnv() }, timeout: 15 * 60_000 })
  const status = async () =>
    JSON.parse(
      (await runCli(['status', '--kubeconfig', sandbox().kubeconfig, '-o', 'json'], { env: sandboxEnv(sandbox()) }))
        .stdout,
    ) as {
      phase: string
      portalUrl: string | null
      components: { name: string; stage: string; version: string }[]
    }
  const cds = async () =>
    (
      (await kube().custom.listNamespacedCustomObject({
        group: 'core.krateo.io',
        version: 'v1alpha1',
        namespace: ns,
        plural: 'compositiondefinitions',
      })) as { items: { metadata: { name: string } }[] }
    ).items
      .map((c) => c.metadata.name)
      .sort()

  it('helm install --wait runs the post-install hook, and the engine alone brings the platform to Ready', async () => {
    const started = Date.now()
    await helm(
      'install',
      'installer',
      `oci://${sandbox().registry}/charts/installer`,
      '--version',
      '0.2.53',
      '--plain-http',
      '-n',
      ns,
      '--create-namespace',
      '--set',
      'exposure.type=LoadBalancer',
      '--wait',
      '--timeout',
      '5m',
    )
    // The hook has run by the time helm returns: the installer CD and the Installer CR exist.
    assert.ok((await cds()).includes('installer'), 'the hook applied the installer CompositionDefinition')
    await kube().custom.getNamespacedCustomObject({
      group: 'composition.krateo.io',
      version: 'v0-2-53',
      namespace: ns,
      plural: 'installers',
      name: 'installer',
    })
    const jobs = await kube().batch.listNamespacedJob({ namespace: ns })
    assert.deepEqual(
      jobs.items.map((j) => j.metadata!.name),
      [],
      'the hook Job succeeded and was deleted (hook-succeeded policy)',
    )
    const ready = await eventually(
      'the platform Ready',
      async () => {
        const s = await status()
        return s.phase === 'Ready' ? s : null
      },
      5 * 60_000,
      2000,
    )
    assert.match(ready.portalUrl ?? '', /^http:\/\/198\.51\.100\.\d+:8080$/, 'LoadBalancer exposure wires the portal')
    assert.ok(Date.now() - started < 5 * 60_000)
  })

  it("the installer's cdc renders with its own ServiceAccount: rbacgen's grants and the chart's own; without the chart's Services grant its consumer render is refused", async () => {
    const sa = 'installers-v0-2-53'
    const installerRef = {
      group: 'composition.krateo.io',
      version: 'v0-2-53',
      namespace: ns,
      plural: 'installers',
      name: 'installer',
    }
    const installer = (await kube().custom.getNamespacedCustomObject(installerRef)) as {
      metadata: { labels: Record<string, string> }
    }
    // rbacgen: the kinds its chart renders (the CompositionDefinitions) granted by the cdc to itself, named after the release.
    const release = installer.metadata.labels['krateo.io/release-name']!
    const rbac = kube().kc.makeApiClient(RbacAuthorizationV1Api)
    const role = await rbac.readNamespacedRole({ name: release, namespace: ns })
    assert.ok(
      role.rules?.some(
        (r) =>
          r.apiGroups?.includes('core.krateo.io') &&
          r.resources?.includes('compositiondefinitions') &&
          r.verbs.includes('*'),
      ),
      JSON.stringify(role.rules),
    )
    const grant = await rbac.readNamespacedRoleBinding({ name: 'installers-lbip-services', namespace: ns })
    assert.deepEqual(
      grant.subjects?.map((x) => x.name),
      [sa],
      "the chart binds its own version's cdc account",
    )
    await rbac.deleteNamespacedRoleBinding({ name: 'installers-lbip-services', namespace: ns })
    const nudge = (value: string | null) =>
      kube().custom.patchNamespacedCustomObject(
        { ...installerRef, body: { metadata: { annotations: { 'krateo.io/paused': value } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )
    await nudge('false')
    const refused = await eventually(
      'the render refused',
      async () => {
        const o = (await kube().custom.getNamespacedCustomObject(installerRef)) as {
          status?: { conditions?: { type: string; status: string; message?: string }[] }
        }
        const synced = o.status?.conditions?.find((c) => c.type === 'Synced')
        return synced?.status === 'False' ? (synced.message ?? '') : null
      },
      60_000,
    )
    assert.match(
      refused,
      new RegExp(`system:serviceaccount:${ns}:${sa}.*cannot list resource "services"`),
      'the lookup of inst.lbip runs with the cdc account',
    )
    const { metadata, roleRef, subjects } = grant
    await rbac.createNamespacedRoleBinding({
      namespace: ns,
      body: {
        metadata: { name: metadata!.name, namespace: ns, labels: metadata!.labels, annotations: metadata!.annotations },
        roleRef,
        subjects,
      },
    })
    await nudge(null)
    await eventually('the platform Ready again', async () => (await status()).phase === 'Ready', 120_000, 1000)
  })

  // Issue #23, part 3: the platform a user installed the chart's own way (release "installer", hooks on) is upgraded
  // by the CLI as its own installs are: moved components re-created at their versions, the new one added, Ready.
  it('the CLI upgrades the platform plain helm installed (release "installer") to 0.2.54, and it runs', async () => {
    // A fast resync, as where this was seen stuck: the installer's cdc renders often while the upgrade moves it.
    await sandbox().setEngineSettings({ cdcResyncSeconds: { installers: 5 } })
    const res = await runCli(['upgrade', ...sandboxFlags(sandbox(), '0.2.54'), '--yes', '--timeout', '8m'], {
      env: sandboxEnv(sandbox()),
    })
    assert.equal(res.code, 0, res.stdout + res.stderr)
    assert.match(res.stdout, /bootstrap release "installer" to 0\.2\.54/)
    const after = await status()
    assert.equal(after.phase, 'Ready', JSON.stringify(after))
    const byName = new Map(after.components.map((c) => [c.name, c]))
    assert.deepEqual([byName.get('authn')?.version, byName.get('authn')?.stage], ['0.22.1', 'ready'])
    assert.equal(byName.get('events-presenter')?.stage, 'ready', 'the component new in 0.2.54 runs')
    assert.equal(byName.has('otel-collector-daemonset'), false, 'the removed component is gone')
    await sandbox().setEngineSettings({ cdcResyncSeconds: { installers: 8 } })
  })

  it('helm uninstall runs bootstrap-teardown and the ordered drain; what the chart leaves is the installer definition and the namespace', async () => {
    // The hooks' scripts check every 5 s (a kind drained in 1 s still waits 5); what they do is what is asserted.
    await sandbox().setEngineSettings({ hookPollSeconds: 1 })
    await helm('uninstall', 'installer', '-n', ns, '--wait', '--timeout', '10m')
    // bootstrap-teardown deleted the Installer CR; the composition release's own pre-delete hook drained the
    // components; core-provider removed their definitions, CRDs and bundles before the release went.
    assert.deepEqual(
      await cds(),
      ['installer'],
      'only the installer definition is left (the hook applied it outside any release)',
    )
    const crds = (await kube().crds.listCustomResourceDefinition()).items
      .map((c) => c.metadata!.name!)
      .filter((n) => n.endsWith('.composition.krateo.io'))
    assert.deepEqual(crds, ['installers.composition.krateo.io'])
    await assert.rejects(
      kube().custom.getNamespacedCustomObject({
        group: 'composition.krateo.io',
        version: 'v0-2-53',
        namespace: ns,
        plural: 'installers',
        name: 'installer',
      }),
      (e) => httpCode(e) === 404,
    )
    const hooks = await kube()
      .kc.makeApiClient((await import('@kubernetes/client-node')).AdmissionregistrationV1Api)
      .listMutatingWebhookConfiguration()
    assert.deepEqual(
      hooks.items.map((h) => h.metadata!.name).filter((n) => n !== 'krateo-sandbox-kubelet'),
      [],
      GEN === 'S' ? 'post-delete removed the core-provider webhook' : 'Gen N has none',
    )
    const left = await status()
    assert.equal(left.phase, 'Bootstrapping', 'status sees the leftover definition, not a platform')
  })
})
