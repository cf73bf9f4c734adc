// uninstall against a real sandbox: nothing left Terminating, nothing lost that was not asked for, and
// proof that the order matters (a plain helm uninstall wedges the same platform).
import assert from 'node:assert/strict'
import { hostname } from 'node:os'
import { execFileSync } from 'node:child_process'
import { describe, it } from 'node:test'
import { CoordinationV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import { eventually, GEN, httpCode, sleep, useSandbox, onGeneration, TEST_RESYNC_SECONDS } from '../helpers/sandbox.js'
import { cliFor, sandboxFlags } from '../helpers/cli.js'
import { DISCOVERY_REFRESH_CRD } from '../../src/cluster/kube-write.js'
import {
  interruptedAt,
  coreProviderStoppedInStage2,
  helmReleases as helmReleasesOf,
  killedAfterHelmUninstall,
  versionStamps as versionStampsOf,
} from '../helpers/scenarios.js'

const JsonPatch = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch)

describe(onGeneration('uninstall'), () => {
  const { sandbox, kube } = useSandbox({ engineSettings: { resyncSeconds: TEST_RESYNC_SECONDS } })
  const { cli, kc, install, freshPlatform } = cliFor(sandbox)
  const scenario = { sandbox, kube, ...cliFor(sandbox) }
  const helmReleases = () => helmReleasesOf(scenario)
  const versionStamps = () => versionStampsOf(scenario)
  const assertClean = async () => {
    const { crds, custom, core } = kube()
    const left = (await crds.listCustomResourceDefinition()).items.map((c) => c.metadata!.name!)
    assert.deepEqual(
      left.filter(
        (n) => n.endsWith('.composition.krateo.io') || n.endsWith('hyperdx.krateo.io') || n === DISCOVERY_REFRESH_CRD,
      ),
      [],
      'no generated CRD, no discovery refresh CRD of an install killed half-way',
    )
    if (left.includes('compositiondefinitions.core.krateo.io')) {
      const cds = (await custom.listClusterCustomObject({
        group: 'core.krateo.io',
        version: 'v1alpha1',
        plural: 'compositiondefinitions',
      })) as { items: unknown[] }
      assert.equal(cds.items.length, 0, 'no CompositionDefinition')
    }
    assert.deepEqual(await versionStamps(), [], 'no webhook, no admission policy')
    const cms = await core.listNamespacedConfigMap({ namespace: 'krateo-system' }).catch(() => ({ items: [] }))
    assert.deepEqual(
      cms.items.map((c) => c.metadata!.name).filter((n) => /-v\d+-\d+-\d+-/.test(n!)),
      [],
      'no cdc bundle',
    )
    assert.deepEqual(helmReleases(), [], 'no helm release')
    const deps = await kube()
      .apps.listNamespacedDeployment({ namespace: 'krateo-system' })
      .catch(() => ({ items: [] }))
    assert.deepEqual(
      deps.items.map((d) => d.metadata!.name),
      [],
      'no workload',
    )
  }

  it('with nothing installed says so and exits 0', async () => {
    const res = await cli(['uninstall', ...kc()])
    assert.equal(res.code, 0, res.stderr)
    assert.match(res.stdout, /Nothing to uninstall in krateo-system/)
  })

  it('removes a half-installed platform (install --no-wait, then uninstall at once)', async () => {
    await install('--no-wait')
    const res = await cli(['uninstall', ...kc(), '--timeout', '3m'])
    assert.equal(res.code, 0, res.stdout + res.stderr)
    await assertClean()
  })

  it('drains consumers first, continues after an interruption, leaves nothing behind, and --purge removes the residue', async () => {
    await freshPlatform()
    const plan = await cli(['uninstall', ...kc(), '--dry-run'])
    assert.equal(plan.code, 0)
    assert.match(plan.stdout, /wave 1: .*portal/)
    assert.match(plan.stdout, /wave 4: .*authn-crd/)
    const status = await cli(['status', ...kc(), '-o', 'json'])
    assert.equal(JSON.parse(status.stdout).phase, 'Ready', 'the dry run changed nothing')

    // The interruption lands while the portal's Composition is gone but its page is still being finalized (by
    // frontend, and by a hold of this test's): the re-run cannot see that from the Composition any more.
    const page = {
      group: 'widgets.templates.krateo.io',
      version: 'v1beta1',
      namespace: 'krateo-system',
      plural: 'pages',
      name: 'dashboard',
    }
    const hold = async (finalizers: string[]) =>
      kube().custom.patchNamespacedCustomObject(
        { ...page, body: [{ op: 'add', path: '/metadata/finalizers', value: finalizers }] },
        JsonPatch,
      )
    const finalizersOf = async () =>
      ((await kube().custom.getNamespacedCustomObject(page)) as { metadata: { finalizers?: string[] } }).metadata
        .finalizers ?? []
    await hold([...(await finalizersOf()), 'test.krateo.io/hold'])
    await interruptedAt(
      { cli },
      ['uninstall', ...kc()],
      {
        what: 'the portal Composition gone, its page finalizing',
        line: /portal: waiting for pages\/dashboard/,
        timeoutMs: 60_000,
      },
      /^Error: interrupted; nothing is half-removed; run the same uninstall command again to continue$/m,
    )
    const plan2 = await cli(['uninstall', ...kc(), '--dry-run'])
    assert.match(plan2.stdout, /wave 1: .*portal \(Composition gone; waits for pages\/dashboard[^)]* to be finalized\)/)

    // The teardown hook's image takes a while to pull: the wait on the Installer says so, with the pod's state.
    await sandbox().setEngineSettings({ readinessDelaySeconds: { 'installer-ordered-teardown': 6 } })
    let again = ''
    const rerun = cli(['uninstall', ...kc(), '--timeout', '3m'], (s) => {
      again += s
    })
    await eventually(
      'the re-run waits on the page',
      async () => /portal: Composition already gone; \d+ of its release's objects still finalizing/.test(again),
      60_000,
      50,
    )
    await sleep(2000)
    const served = (
      await kube().crds.readCustomResourceDefinition({ name: 'frontends.composition.krateo.io' })
    ).spec.versions.find((v) => v.storage)!.name
    const frontend = (await kube().custom.getNamespacedCustomObject({
      group: 'composition.krateo.io',
      version: served,
      namespace: 'krateo-system',
      plural: 'frontends',
      name: 'frontend',
    })) as { metadata: { deletionTimestamp?: string } }
    assert.equal(
      frontend.metadata.deletionTimestamp,
      undefined,
      'frontend (which finalizes the page) is not drained while the page waits',
    )
    await hold((await finalizersOf()).filter((f) => f !== 'test.krateo.io/hold'))
    const res = await rerun
    await sandbox().setEngineSettings({ readinessDelaySeconds: {} })
    assert.equal(res.code, 0, res.stdout + res.stderr)
    assert.match(
      res.stdout,
      /teardown hook Job installer-ordered-teardown: pod installer-ordered-teardown-\S+ ContainerCreating/,
    )
    // Consumers before providers: portal is gone before frontend is deleted, frontend before authn.
    const order = (name: string) => res.stdout.indexOf(`${name}: deleting`)
    const gone = (name: string) => res.stdout.indexOf(`${name}: gone`)
    assert.ok(gone('portal') >= 0 && gone('portal') < order('frontend'), res.stdout)
    assert.ok(gone('frontend') < order('authn'), res.stdout)
    // Unless the first run drained hyperdx-provider already: judged on this run's Stage 1 only (Stage 2 names the
    // definitions, hyperdx-provider's included, whichever way the drain went).
    const drain = res.stdout.slice(res.stdout.indexOf('▶ Stage 1: drain'), res.stdout.indexOf('▶ Stage 2'))
    if (drain.includes('hyperdx-provider: '))
      assert.ok(
        drain.indexOf('hyperdx-provider: gone') >= 0 &&
          drain.indexOf('hyperdx-provider: gone') < drain.indexOf('oasgen-provider: deleting'),
        `RestDefinitions drained before oasgen-provider:\n${res.stdout}`,
      )
    assert.match(
      res.stdout,
      GEN === 'S' ? /Stage 3: sweep .* — 2 removed/ : /Stage 3: sweep .* — 3 removed/,
      'the version stamp (webhook; or policy and binding) and the generated hyperdx CRD',
    )
    // The claim the ClickStack StatefulSet's template made outlives its release: kept, and said to hold data.
    assert.match(
      res.stdout,
      /Kept on purpose.*\n {2}PersistentVolumeClaim krateo-system\/data-krateo-clickstack-0 \(its data is lost when deleted\)\n.*kubectl delete pvc.*\n {2}Namespace krateo-system/,
    )
    await assertClean()

    const purge = await cli(['uninstall', ...kc(), '--purge', '--yes'])
    assert.equal(purge.code, 0, purge.stdout + purge.stderr)
    await assert.rejects(kube().core.readNamespace({ name: 'krateo-system' }), (e) => httpCode(e) === 404)
    await assert.rejects(
      kube().crds.readCustomResourceDefinition({ name: 'compositiondefinitions.core.krateo.io' }),
      (e) => httpCode(e) === 404,
    )
  })

  it('a run killed after helm uninstall, before the sweep: the next run takes over its lock (its process is gone) and completes the sweep', async () => {
    await freshPlatform()
    // An install killed between creating and deleting its discovery refresh CRD (operations/heal.ts) left it.
    await kube().crds.createCustomResourceDefinition({
      body: {
        metadata: { name: DISCOVERY_REFRESH_CRD, labels: { 'app.kubernetes.io/managed-by': 'krateo-installer' } },
        spec: {
          group: 'cli.krateo-installer.io',
          scope: 'Cluster',
          names: { plural: 'discoveryrefreshes', singular: 'discoveryrefresh', kind: 'DiscoveryRefresh' },
          versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object' } } }],
        },
      },
    })
    // What stamps the version label outlives the release: core-provider's webhook (Gen S) or admission policy (Gen N).
    await killedAfterHelmUninstall(scenario, GEN === 'S' ? ['krateo'] : ['core-provider-composition-version'])
    await assertClean()
  })

  // Both generations (issue #23): on Gen S core-provider's absence also refuses every composition write (its
  // webhook fails closed); on Gen N writes go on and only its removals stop.
  it('core-provider stopped while Stage 2 waits: uninstall names it (exit 7); --force --yes finishes, removing the generated CRDs itself', async () => {
    await coreProviderStoppedInStage2({ sandbox, kube, ...cliFor(sandbox) }, { slowStage2: true, timeout: '3m' })
    await assertClean()
  })

  // The lock does not depend on the engine generation: proved once, on Gen S, to keep the suite's time.
  it(
    'a lock deleted under a running uninstall stops it (exit 11) within a renewal; the same command run again finishes',
    { skip: GEN !== 'S' && 'the run lock does not depend on the engine generation' },
    async () => {
      await freshPlatform()
      // A leaf whose removal takes longer than a renewal period (10 s): the loss must stop the run inside that wait,
      // however fast the rest of the drain goes on this machine.
      await sandbox().setEngineSettings({ slowDeletionSeconds: { 'krateo-sse-proxy': 40 } })
      let seen = ''
      const running = cli(['uninstall', ...kc(), '--yes', '--timeout', '3m'], (chunk) => {
        seen += chunk
      })
      await eventually('the drain under way', async () => /krateo-sse-proxy: deleting/.test(seen), 180_000, 100)
      await kube()
        .kc.makeApiClient(CoordinationV1Api)
        .deleteNamespacedLease({ name: 'krateo-installer', namespace: 'krateo-system' })
      const stopped = await running
      assert.equal(stopped.code, 11, stopped.stdout + stopped.stderr)
      assert.match(
        stopped.stderr,
        /^Error: stopped: the krateo-installer lock \(Lease krateo-system\/krateo-installer\) was deleted while this run held it/m,
      )
      await sandbox().setEngineSettings({ slowDeletionSeconds: {} })
      const done = await cli(['uninstall', ...kc(), '--yes', '--timeout', '4m'])
      assert.equal(done.code, 0, done.stdout + done.stderr)
      await assertClean()
    },
  )

  it(
    'one run at a time: a held lock refuses with its holder, status shows it, and a lock whose holder died is taken over, whichever way its clock is off',
    { skip: GEN !== 'S' && 'the run lock does not depend on the engine generation' },
    async () => {
      await freshPlatform()
      const lease = (renewed: Date, holder = 'ci@runner-7 pid 42', seconds = 30) => ({
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: {
          name: 'krateo-installer',
          namespace: 'krateo-system',
          annotations: { 'krateo-installer/command': 'upgrade' },
        },
        spec: {
          holderIdentity: holder,
          leaseDurationSeconds: seconds,
          acquireTime: renewed.toISOString().replace('Z', '000Z'),
          renewTime: renewed.toISOString().replace('Z', '000Z'),
        },
      })
      await sandbox().apiCreate('/apis/coordination.k8s.io/v1/namespaces/krateo-system/leases', lease(new Date()))
      const refused = await cli(['uninstall', ...kc()])
      assert.equal(refused.code, 11, refused.stdout + refused.stderr)
      assert.match(
        refused.stderr,
        /^Error: another run holds the krateo-installer lock on krateo-system: upgrade by ci@runner-7 pid 42, since \S+; wait for it to finish/m,
      )
      const status = await cli(['status', ...kc()])
      assert.match(status.stdout, /In progress: upgrade by ci@runner-7 pid 42, since /)
      assert.equal(
        JSON.parse((await cli(['status', ...kc(), '-o', 'json'])).stdout).phase,
        'Ready',
        'the refused run changed nothing',
      )
      const replaceLease = async (renewed: Date, holder?: string, seconds?: number) => {
        await sandbox().apiRequest(
          'DELETE',
          '/apis/coordination.k8s.io/v1/namespaces/krateo-system/leases/krateo-installer',
        )
        await sandbox().apiCreate(
          '/apis/coordination.k8s.io/v1/namespaces/krateo-system/leases',
          lease(renewed, holder, seconds),
        )
      }
      // A holder with this machine's hostname in another PID namespace (a container on the host's network): that
      // its pid is not seen here does not make it gone (review N4d).
      const neighbour = `ci@${hostname()} pid 999999 pidns 4026599999`
      await replaceLease(new Date(), neighbour)
      const sameHost = await cli(['uninstall', ...kc()])
      assert.equal(sameHost.code, 11, sameHost.stdout + sameHost.stderr)
      assert.ok(
        sameHost.stderr.includes(
          `another run holds the krateo-installer lock on krateo-system: upgrade by ${neighbour}`,
        ),
        sameHost.stderr,
      )
      // A holder whose clock runs an hour ahead died: by its timestamps it holds the lock for an hour more. This run
      // watches the lease itself and takes it over (review N4c); the same-version upgrade then only reconciles.
      // A 10-s lease: the run watches it for the duration its holder declared.
      await replaceLease(new Date(Date.now() + 3600_000), undefined, 10)
      const ahead = await cli(['upgrade', ...sandboxFlags(sandbox()), '--yes', '--timeout', '3m'])
      assert.equal(ahead.code, 0, ahead.stdout + ahead.stderr)
      assert.match(ahead.stderr, /last renewed it at \S+ by its clock, ahead of this machine: watching it for 10s/)
      assert.match(
        ahead.stderr,
        /took over the krateo-installer lock: upgrade by ci@runner-7 pid 42 stopped renewing it/,
      )
      await replaceLease(new Date(Date.now() - 120_000), undefined, 10)
      const res = await cli(['uninstall', ...kc(), '--timeout', '3m'])
      assert.equal(res.code, 0, res.stdout + res.stderr)
      assert.match(
        res.stderr,
        /took over the krateo-installer lock: upgrade by ci@runner-7 pid 42 stopped renewing it at \S+ \(unchanged for 10s as seen here\)/,
      )
      // Its timestamps come from another machine's clock: only what this run saw counts (review N4).
      assert.match(res.stderr, /last renewed it at \S+ by its clock: watching it for 10s before taking it over/)
      await assertClean()
    },
  )

  it(
    'one run at a time: install is refused while an uninstall runs, and two installs at once run one',
    { skip: GEN !== 'S' && 'the run lock does not depend on the engine generation' },
    async () => {
      const [a, b] = await Promise.all([
        cli(['install', ...sandboxFlags(sandbox()), '--exposure', 'LoadBalancer', '--timeout', '5m']),
        cli(['install', ...sandboxFlags(sandbox()), '--exposure', 'LoadBalancer', '--timeout', '5m']),
      ])
      assert.deepEqual([a.code, b.code].sort(), [0, 11], a.stderr + b.stderr)
      assert.match(
        (a.code === 11 ? a : b).stderr,
        /another run holds the krateo-installer lock on krateo-system: install by /,
      )
      let seen = ''
      const uninstalling = cli(['uninstall', ...kc()], (out) => {
        seen += out
      })
      await eventually('the drain started', async () => /Stage 1: drain/.test(seen), 60_000, 50)
      const during = await cli(['install', ...sandboxFlags(sandbox()), '--exposure', 'LoadBalancer', '--timeout', '5m'])
      assert.equal(during.code, 11, during.stdout + during.stderr)
      assert.match(during.stderr, /another run holds the krateo-installer lock on krateo-system: uninstall by /)
      assert.equal((await uninstalling).code, 0)
      await assertClean()
    },
  )

  it("a definition deleted by hand (its CRD gone, its Composition still in the installer's release) does not wedge the Installer's removal", async () => {
    await freshPlatform()
    // A resync of the installer would render the definition again (Pass A) before uninstall pauses it: keep the
    // window the real 3-minute resync leaves.
    await sandbox().setEngineSettings({ resyncSeconds: 600 })
    // A reconcile of the installer in flight or queued before the change still runs (and would re-render the
    // definition): wait until its helm release keeps one revision for longer than such a render takes.
    const revision = async () =>
      Math.max(
        0,
        ...(await kube().core.listNamespacedSecret({ namespace: 'krateo-system', labelSelector: 'owner=helm' })).items
          .filter((s) => s.metadata?.labels?.name?.startsWith('installer-'))
          .map((s) => Number(s.metadata?.labels?.version ?? 0)),
      )
    let seen = { revision: -1, since: Date.now() }
    await eventually(
      "the installer's release quiet",
      async () => {
        const now = await revision()
        if (now !== seen.revision) seen = { revision: now, since: Date.now() }
        return Date.now() - seen.since > 10_000
      },
      120_000,
      1000,
    )
    await kube().custom.deleteNamespacedCustomObject({
      group: 'core.krateo.io',
      version: 'v1alpha1',
      namespace: 'krateo-system',
      plural: 'compositiondefinitions',
      name: 'krateo-sse-proxy',
    })
    await eventually(
      'core-provider removed its CRD',
      async () =>
        (await kube()
          .crds.readCustomResourceDefinition({ name: 'krateosseproxies.composition.krateo.io' })
          .catch((e) => {
            if (httpCode(e) === 404) return null
            throw e
          })) === null,
      60_000,
    )
    const res = await cli(['uninstall', ...kc(), '--timeout', '2m']).finally(() =>
      sandbox().setEngineSettings({ resyncSeconds: TEST_RESYNC_SECONDS }),
    )
    assert.equal(res.code, 0, res.stdout + res.stderr)
    assert.match(
      res.stdout,
      /the installer's release still lists KrateoSseProxy composition\.krateo\.io\/v0-3-0, whose CRD is gone: a stand-in CRD lets helm uninstall it/,
    )
    await assertClean()
  })

  it('a plain helm uninstall of the same platform wedges: the namespace stays Terminating', async () => {
    await cli(['uninstall', ...kc(), '--purge', '--yes', '--force'])
    await freshPlatform()
    // The hooks' scripts check every 5 s (a kind drained in 1 s still waits 5); what they leave is what is asserted.
    await sandbox().setEngineSettings({ hookPollSeconds: 1 })
    execFileSync(sandbox().helm, ['uninstall', 'krateo', '-n', 'krateo-system', '--timeout', '5m'], {
      env: { ...process.env, ...sandbox().helmEnv() },
    })
    await kube().core.deleteNamespace({ name: 'krateo-system' })
    // Wedged, as the namespace controller itself says once it has deleted what it could: the installer
    // definition's finalizer remains, and nothing left running clears it.
    const ns = await eventually(
      'the namespace controller reports finalizers remaining',
      async () => {
        const ns = await kube().core.readNamespace({ name: 'krateo-system' })
        const remaining = ns.status?.conditions?.find((c) => c.type === 'NamespaceFinalizersRemaining')
        return remaining?.status === 'True' && /finalizer\.managedresource\.krateo\.io/.test(remaining.message ?? '')
          ? ns
          : undefined
      },
      120_000,
      1000,
    )
    assert.ok(ns.metadata?.deletionTimestamp, 'the namespace is Terminating')
    // The chart's hooks ran (bootstrap-teardown deleted the Installer CR and waited for the drain), but the installer
    // CompositionDefinition the post-install hook applied is in no release: core-provider went with the release,
    // so nothing clears its finalizer (see chart-install.test.ts for the same on the chart's own path).
    const cd = (await kube().custom.getNamespacedCustomObject({
      group: 'core.krateo.io',
      version: 'v1alpha1',
      namespace: 'krateo-system',
      plural: 'compositiondefinitions',
      name: 'installer',
    })) as { metadata: { finalizers?: string[]; deletionTimestamp?: string } }
    assert.ok(cd.metadata.deletionTimestamp, 'deleted with the namespace')
    assert.ok(
      cd.metadata.finalizers?.includes('finalizer.managedresource.krateo.io'),
      'no controller is left to clear it',
    )
  })
})
