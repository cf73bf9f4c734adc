// What the two engine generations (contract section 0) do differently, proved on the generation this sandbox
// runs ($KRATEO_SANDBOX_GENERATION; the suite runs once per generation): who stamps the version label, what a
// version bump adds (conversion webhook / pruning), the still-exist finalizer, helm on every observe, lost
// creates, releases left pending, and what both share (release-name label, chart pull on delete, Ready as soon as
// helm returns). Stand-alone CompositionDefinitions, no installer.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { gunzipSync, gzipSync } from 'node:zlib'
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import { eventually, GEN, httpCode, sleep, useSandbox, whenServed, helmFor } from '../helpers/sandbox.js'
import { generationProfile } from '../../sandbox/engine/generation.js'

type Obj = {
  metadata: {
    name: string
    uid?: string
    resourceVersion?: string
    labels?: Record<string, string>
    annotations?: Record<string, string>
    finalizers?: string[]
    deletionTimestamp?: string
  }
  status?: Record<string, unknown>
}
const cond = (o: Obj | null, type: string) =>
  (
    (o?.status?.conditions as { type: string; status: string; reason: string; message?: string }[] | undefined) ?? []
  ).find((c) => c.type === type)
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch)

describe(`engine generation ${GEN}: what differs and what is shared`, () => {
  const profile = generationProfile(GEN)
  const ns = 'krateo-system'
  const RESYNC = 4
  const { sandbox, kube } = useSandbox({
    engineSettings: {
      resyncSeconds: RESYNC,
      lostCreateGraceSeconds: 6,
      pendingStandDownSeconds: 8,
      loseCreateRace: ['lost'],
      chartPullFails: [],
    },
  })
  const helm = helmFor(sandbox)
  const cdApi = { group: 'core.krateo.io', version: 'v1alpha1', namespace: ns, plural: 'compositiondefinitions' }
  const authns = (version: string) => ({ group: 'composition.krateo.io', version, namespace: ns, plural: 'authns' })
  const orNull = (p: Promise<unknown>) =>
    p
      .then((o) => o as Obj)
      .catch((e) => {
        if (httpCode(e) === 404) return null
        throw e
      })
  const getCd = (name: string) => orNull(kube().custom.getNamespacedCustomObject({ ...cdApi, name }))
  const getAuthn = (name: string, version = 'v0-22-0') =>
    orNull(kube().custom.getNamespacedCustomObject({ ...authns(version), name }))
  const defineCd = (name: string, chart: string, version: string) =>
    kube().custom.createNamespacedCustomObject({
      ...cdApi,
      body: {
        apiVersion: 'core.krateo.io/v1alpha1',
        kind: 'CompositionDefinition',
        metadata: { name },
        spec: { chart: { url: `oci://${sandbox().registry}/charts/${chart}`, version } },
      },
    })
  const createAuthn = (name: string) =>
    whenServed(`create ${name}`, () =>
      kube().custom.createNamespacedCustomObject({
        ...authns('v0-22-0'),
        body: { apiVersion: 'composition.krateo.io/v0-22-0', kind: 'Authn', metadata: { name }, spec: {} },
      }),
    )
  const revision = (release: string) =>
    (JSON.parse(helm('history', release, '-n', ns, '-o', 'json')) as { revision: number }[]).pop()!.revision
  const coreProvider = async (replicas: number) => {
    await sandbox().scaleDeployment(ns, 'core-provider', replicas)
    await eventually(
      `core-provider at ${replicas}`,
      async () =>
        ((await kube().apps.readNamespacedDeployment({ name: 'core-provider', namespace: ns })).status
          ?.availableReplicas ?? 0) === replicas,
      30_000,
      200,
    )
  }

  it('core-provider runs and stamps the composition version as the generation does', async () => {
    helm(
      'install',
      'krateo',
      `oci://${sandbox().registry}/charts/installer`,
      '--version',
      '0.2.53',
      '--plain-http',
      '-n',
      ns,
      '--create-namespace',
      '--no-hooks',
      '--set',
      'bootstrap.coreProvider.enabled=true',
      '--wait',
    )
    await defineCd('authn', 'authn', '0.22.0')
    await eventually('CD authn Ready', async () => cond(await getCd('authn'), 'Ready')?.status === 'True', 60_000)
    const webhooks = (
      await kube()
        .kc.makeApiClient((await import('@kubernetes/client-node')).AdmissionregistrationV1Api)
        .listMutatingWebhookConfiguration()
    ).items
    const stampedByWebhook = webhooks.some((w) => (w.webhooks ?? []).some((h) => h.name === 'core.provider.krateo.io'))
    const policies = JSON.parse(
      (await sandbox().apiGet('/apis/admissionregistration.k8s.io/v1/mutatingadmissionpolicies')).body,
    ) as { items: { metadata: { name: string } }[] }
    assert.equal(
      stampedByWebhook,
      profile.versionStamp === 'webhook',
      'Gen S: core-provider webhook core.provider.krateo.io',
    )
    assert.equal(
      policies.items.length > 0,
      profile.versionStamp === 'policy',
      'Gen N: a MutatingAdmissionPolicy in the API server',
    )
    await createAuthn('a1')
    const a1 = await eventually('a1 created', () => getAuthn('a1'), 30_000, 100)
    assert.equal(a1.metadata.labels?.['krateo.io/composition-version'], 'v0-22-0', 'stamped on CREATE')
  })

  it('Ready=True Available as soon as helm returns, whatever the pods do; the cdc writes its release name on every observe', async () => {
    await sandbox().setEngineSettings({ readinessDelaySeconds: { slow: 30 } })
    await createAuthn('slow')
    const ready = await eventually(
      'slow Ready',
      async () => {
        const o = await getAuthn('slow')
        return cond(o, 'Ready')?.status === 'True' ? o : null
      },
      30_000,
      100,
    )
    assert.equal(cond(ready, 'Ready')?.reason, 'Available')
    assert.match(cond(ready, 'Ready')?.message ?? '', /^Composition (created|is up-to-date)$/)
    const release = ready.metadata.labels?.['krateo.io/release-name']
    assert.match(release ?? '', /^slow-[0-9a-z]{8}$/, 'default release name <name>-<uid 8>')
    const pods = await kube().core.listNamespacedPod({
      namespace: ns,
      labelSelector: `app.kubernetes.io/instance=${release}`,
    })
    assert.equal(
      pods.items[0]?.status?.containerStatuses?.[0]?.state?.waiting?.reason,
      'ContainerCreating',
      'its pod is still pulling',
    )
    // Take the label away; a change of krateo.io/paused makes the cdc observe at once, and it writes it back.
    await kube().custom.patchNamespacedCustomObject(
      {
        ...authns('v0-22-0'),
        name: 'slow',
        body: {
          metadata: { labels: { 'krateo.io/release-name': null }, annotations: { 'krateo.io/paused': 'false' } },
        },
      },
      mergePatch,
    )
    await eventually(
      'release name written back',
      async () => (await getAuthn('slow'))?.metadata.labels?.['krateo.io/release-name'] === release,
      10_000,
      100,
    )
  })

  it(
    profile.upgradeOnEveryObserve
      ? 'Gen S runs helm upgrade on every observe'
      : 'Gen N runs helm only when something changed',
    async () => {
      const release = (await getAuthn('a1'))!.metadata.labels!['krateo.io/release-name']!
      const before = revision(release)
      await sleep((RESYNC * 2 + 2) * 1000)
      const after = revision(release)
      if (profile.upgradeOnEveryObserve)
        assert.ok(after >= before + 2, `revision ${before} -> ${after} over two resyncs`)
      else assert.equal(after, before, 'no upgrade without a change')
    },
  )

  it(
    profile.lostCreateGraceSeconds === null
      ? 'Gen S: a lost create result blocks until the pending mark is removed'
      : 'Gen N: a lost create result heals on its own after the grace',
    async () => {
      await defineCd('lost', 'snowplow', '0.20.1')
      const blocked = await eventually(
        'lost blocked',
        async () => {
          const o = await getCd('lost')
          return /cannot determine creation result/.test(cond(o, 'Synced')?.message ?? '') ? o : null
        },
        30_000,
        100,
      )
      assert.ok(blocked.metadata.annotations?.['krateo.io/external-create-pending'])
      if (profile.lostCreateGraceSeconds === null) {
        await sleep(10_000)
        assert.match(
          cond(await getCd('lost'), 'Synced')?.message ?? '',
          /cannot determine creation result/,
          'still blocked after the grace N would give',
        )
        await kube().custom.patchNamespacedCustomObject(
          {
            ...cdApi,
            name: 'lost',
            body: { metadata: { annotations: { 'krateo.io/external-create-pending': null } } },
          },
          mergePatch,
        )
      }
      await eventually('lost Ready', async () => cond(await getCd('lost'), 'Ready')?.status === 'True', 60_000, 200)
    },
  )

  it(
    profile.pendingRelease === 'rollback'
      ? 'Gen S rolls back a release left pending on the next observe'
      : 'Gen N stands down on a pending release (PendingHelmOperation), then rolls it back',
    async () => {
      const release = (await getAuthn('a1'))!.metadata.labels!['krateo.io/release-name']!
      // A cut upgrade leaves a new revision pending over a deployed one: change the values to get that revision.
      const before = revision(release)
      await kube().custom.patchNamespacedCustomObject(
        { ...authns('v0-22-0'), name: 'a1', body: { spec: { config: { CUT: 'here' } } } },
        mergePatch,
      )
      await eventually(
        'values upgraded',
        async () => revision(release) > before && releaseStatus(release) === 'deployed',
        30_000,
        250,
      )
      // Paused while the release is marked, so no resync's observe (every 4 s here) sees it before the unpause does.
      await kube().custom.patchNamespacedCustomObject(
        { ...authns('v0-22-0'), name: 'a1', body: { metadata: { annotations: { 'krateo.io/paused': 'true' } } } },
        mergePatch,
      )
      await eventually(
        'a1 paused',
        async () => cond(await getAuthn('a1'), 'Synced')?.reason === 'ReconcilePaused',
        10_000,
        100,
      )
      await markPending(release)
      const seen = Date.now()
      await kube().custom.patchNamespacedCustomObject(
        { ...authns('v0-22-0'), name: 'a1', body: { metadata: { annotations: { 'krateo.io/paused': 'false' } } } },
        mergePatch,
      )
      if (profile.pendingRelease === 'stand-down') {
        const standing = await eventually(
          'PendingHelmOperation',
          async () => {
            const o = await getAuthn('a1')
            return cond(o, 'Ready')?.reason === 'PendingHelmOperation' ? o : null
          },
          10_000,
          100,
        )
        assert.equal(cond(standing, 'Ready')?.status, 'False')
      }
      await eventually('release deployed again', async () => releaseStatus(release) === 'deployed', 40_000, 250)
      if (profile.pendingRelease === 'stand-down')
        assert.ok(Date.now() - seen >= 7000, 'not before the stand-down time')
      await eventually(
        'a1 Ready again',
        async () => cond(await getAuthn('a1'), 'Ready')?.status === 'True',
        30_000,
        200,
      )
    },
  )

  it(
    profile.stillExistFinalizer
      ? 'Gen S holds the still-exist finalizer on a CD while its Compositions exist'
      : 'Gen N has no still-exist finalizer',
    async () => {
      await eventually(
        'finalizers settled',
        async () => {
          const f = (await getCd('authn'))?.metadata.finalizers ?? []
          return (
            f.includes('finalizer.managedresource.krateo.io') &&
            f.includes('composition.krateo.io/still-exist-compositions-finalizer') === profile.stillExistFinalizer
          )
        },
        30_000,
        200,
      )
    },
  )

  it(
    profile.pruneStaleVersions
      ? 'a version bump: Gen N prunes the version no CD and no Composition references'
      : 'a version bump: Gen S injects a conversion webhook, so reads of the kind need core-provider',
    async () => {
      // Gen S's core-provider relabels each Composition once, as listed: a write between its list and its update
      // (a1's cdc writes status at every 4 s resync) ends the move for good, as on the real engine (full run).
      // a1 is paused first, so no one writes it while the version moves.
      await kube().custom.patchNamespacedCustomObject(
        { ...authns('v0-22-0'), name: 'a1', body: { metadata: { annotations: { 'krateo.io/paused': 'true' } } } },
        mergePatch,
      )
      await eventually(
        'a1 paused',
        async () => cond(await getAuthn('a1'), 'Synced')?.reason === 'ReconcilePaused',
        30_000,
        200,
      )
      // Paused is not yet quiet: a helm run the previous test left in flight (an old cdc pod's, during a rollout)
      // still writes a1's status when it ends (full run: the move ended at that write). Quiet is no write to a1
      // for longer than the cdc's resync.
      let seen = { rv: '', since: Date.now() }
      await eventually(
        'a1 quiet',
        async () => {
          const rv = (await getAuthn('a1'))?.metadata.resourceVersion ?? ''
          if (rv !== seen.rv) seen = { rv, since: Date.now() }
          return Date.now() - seen.since >= 6000
        },
        60_000,
        250,
      )
      await kube().custom.patchNamespacedCustomObject({
        ...cdApi,
        name: 'authn',
        body: [{ op: 'replace', path: '/spec/chart/version', value: '0.22.1' }],
      })
      await eventually(
        'relabelled to v0-22-1',
        async () => (await getAuthn('a1', 'v0-22-1'))?.metadata.labels?.['krateo.io/composition-version'] === 'v0-22-1',
        60_000,
        250,
      )
      await eventually(
        'CD Ready at v0-22-1',
        async () => {
          const o = await getCd('authn')
          return cond(o, 'Ready')?.status === 'True' && o?.status?.apiVersion === 'composition.krateo.io/v0-22-1'
        },
        60_000,
        250,
      )
      const crd = await eventually(
        'CRD settled',
        async () => {
          const c = await kube().crds.readCustomResourceDefinition({ name: 'authns.composition.krateo.io' })
          const old = c.spec.versions.find((v) => v.name === 'v0-22-0')
          return old && old.served === !profile.pruneStaleVersions ? c : null
        },
        30_000,
        250,
      )
      assert.equal(crd.spec.conversion?.strategy, 'Webhook', 'conversion through core-provider from the first bump on')
      await coreProvider(0)
      try {
        const read = await kube()
          .custom.getNamespacedCustomObject({ ...authns('v0-22-1'), name: 'a1' })
          .then(
            () => 'ok',
            (e) => String((e as { body?: string }).body ?? e),
          )
        assert.match(read, /conversion webhook/, 'with core-provider down a read of the bumped kind fails')
        const write = await createAuthnAt('v0-22-1', 'a2').then(
          () => 'ok',
          (e) => String((e as { body?: string }).body ?? e),
        )
        if (profile.versionStamp === 'webhook')
          assert.match(write, /core\.provider\.krateo\.io/, 'Gen S: the fail-closed webhook refuses writes')
        else assert.doesNotMatch(write, /core\.provider\.krateo\.io/, 'Gen N: no webhook in the write path')
      } finally {
        await coreProvider(1)
      }
    },
  )

  it('deleting a CompositionDefinition pulls its chart first: with the registry refusing, deletion stays blocked with the reason', async () => {
    await sandbox().setEngineSettings({ chartPullFails: ['lost'] })
    await kube().custom.deleteNamespacedCustomObject({ ...cdApi, name: 'lost' })
    const blocked = await eventually(
      'delete blocked',
      async () => {
        const o = await getCd('lost')
        return /delete failed: failed to pull chart/.test(cond(o, 'Synced')?.message ?? '') ? o : null
      },
      30_000,
      200,
    )
    assert.ok(blocked.metadata.deletionTimestamp)
    assert.match(cond(blocked, 'Synced')?.message ?? '', /connection refused/)
    await sandbox().setEngineSettings({ chartPullFails: [] })
    await eventually('lost gone once the registry answers', async () => (await getCd('lost')) === null, 60_000, 250)
  })

  function createAuthnAt(version: string, name: string) {
    return kube().custom.createNamespacedCustomObject({
      ...authns(version),
      body: { apiVersion: `composition.krateo.io/${version}`, kind: 'Authn', metadata: { name }, spec: {} },
    })
  }

  function releaseStatus(release: string): string {
    return (JSON.parse(helm('status', release, '-n', ns, '-o', 'json')) as { info: { status: string } }).info.status
  }

  /** Leaves the release's last revision pending-upgrade, as a cdc cut short mid-upgrade does (helm's storage format). */
  async function markPending(release: string): Promise<void> {
    const secrets = await kube().core.listNamespacedSecret({
      namespace: ns,
      labelSelector: `owner=helm,name=${release}`,
    })
    const last = secrets.items
      .sort((a, b) => Number(a.metadata!.labels!.version) - Number(b.metadata!.labels!.version))
      .pop()!
    const rel = JSON.parse(
      gunzipSync(Buffer.from(Buffer.from(last.data!.release!, 'base64').toString(), 'base64')).toString(),
    ) as { info: { status: string } }
    rel.info.status = 'pending-upgrade'
    const data = Buffer.from(gzipSync(Buffer.from(JSON.stringify(rel))).toString('base64')).toString('base64')
    await kube().core.patchNamespacedSecret(
      {
        name: last.metadata!.name!,
        namespace: ns,
        body: { metadata: { labels: { status: 'pending-upgrade' } }, data: { release: data } },
      },
      mergePatch,
    )
    assert.equal(releaseStatus(release), 'pending-upgrade')
  }
})
