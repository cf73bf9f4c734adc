// The engine simulator's event handling, policies and fault knobs (contract sections 2 and 3), on stand-alone
// CompositionDefinitions and Compositions (no installer): what a cdc ignores, what it handles at once, what a
// restart changes, and the knobs the CLI's fault tests rely on.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import { eventually, httpCode, sleep, useSandbox, helmFor } from '../helpers/sandbox.js'

type Obj = {
  metadata: {
    name: string
    uid?: string
    labels?: Record<string, string>
    annotations?: Record<string, string>
    finalizers?: string[]
    deletionTimestamp?: string
    creationTimestamp?: string
  }
  status?: Record<string, unknown>
}
const cond = (o: Obj | null, type: string) =>
  (
    (o?.status?.conditions as { type: string; status: string; reason: string; message?: string }[] | undefined) ?? []
  ).find((c) => c.type === type)
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch)

describe('engine simulator: events, policies and fault knobs', () => {
  const ns = 'krateo-system'
  const { sandbox, kube } = useSandbox({
    engineSettings: {
      resyncSeconds: 5,
      readinessDelaySeconds: { 'slow-ready': 6 },
      slowDeletionSeconds: { 'slow-delete': 5, held: 6 },
      cdcLoseCreateRace: ['racer'],
      loseCreateRace: ['lost-cd'],
    },
  })
  const helm = helmFor(sandbox)
  const cdApi = { group: 'core.krateo.io', version: 'v1alpha1', namespace: ns, plural: 'compositiondefinitions' }
  const sse = { group: 'composition.krateo.io', version: 'v0-3-0', namespace: ns, plural: 'krateosseproxies' }
  const getCd = (name: string) =>
    kube()
      .custom.getNamespacedCustomObject({ ...cdApi, name })
      .then((o) => o as Obj)
      .catch((e) => {
        if (httpCode(e) === 404) return null
        throw e
      })
  const get = (name: string) =>
    kube()
      .custom.getNamespacedCustomObject({ ...sse, name })
      .then((o) => o as Obj)
      .catch((e) => {
        if (httpCode(e) === 404) return null
        throw e
      })
  const create = (name: string) =>
    kube().custom.createNamespacedCustomObject({
      ...sse,
      body: { apiVersion: 'composition.krateo.io/v0-3-0', kind: 'KrateoSseProxy', metadata: { name }, spec: {} },
    })
  const annotate = (name: string, annotations: Record<string, string | null>) =>
    kube().custom.patchNamespacedCustomObject({ ...sse, name, body: { metadata: { annotations } } }, mergePatch)
  const readyReason = async (name: string) => cond(await get(name), 'Ready')?.reason
  const cdcDeployment = 'krateosseproxies-v0-3-0-controller'
  const defineSse = async (name: string, annotations: Record<string, string> = {}) =>
    await kube().custom.createNamespacedCustomObject({
      ...cdApi,
      body: {
        apiVersion: 'core.krateo.io/v1alpha1',
        kind: 'CompositionDefinition',
        metadata: { name, annotations },
        spec: { chart: { url: `oci://${sandbox().registry}/charts/krateo-sse-proxy`, version: '0.3.0' } },
      },
    })

  it('core-provider serves a stand-alone CompositionDefinition; management-policy observe creates nothing', async () => {
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
    await defineSse('sse')
    await eventually('CD sse Ready', async () => cond(await getCd('sse'), 'Ready')?.status === 'True', 60_000)
    await kube().custom.createNamespacedCustomObject({
      ...cdApi,
      body: {
        apiVersion: 'core.krateo.io/v1alpha1',
        kind: 'CompositionDefinition',
        metadata: { name: 'observed-only', annotations: { 'krateo.io/management-policy': 'observe' } },
        spec: { chart: { url: `oci://${sandbox().registry}/charts/authn`, version: '0.22.0' } },
      },
    })
    const observed = await eventually(
      'observe-only CD reported',
      async () => {
        const o = await getCd('observed-only')
        return cond(o, 'Synced') ? o : null
      },
      30_000,
    )
    assert.equal(cond(observed, 'Synced')?.reason, 'ReconcilePaused')
    await assert.rejects(
      kube().crds.readCustomResourceDefinition({ name: 'authns.composition.krateo.io' }),
      (e) => httpCode(e) === 404,
      'no CRD created under observe',
    )
  })

  it('Ready as soon as helm returns; the readiness-delay knob slows the pods, not the Ready condition', async () => {
    await create('slow-ready')
    const ready = await eventually(
      'slow-ready Ready',
      async () => {
        const o = await get('slow-ready')
        return cond(o, 'Ready')?.status === 'True' ? o : null
      },
      30_000,
      100,
    )
    const release = ready.metadata.labels?.['krateo.io/release-name']
    const podState = async () =>
      (await kube().core.listNamespacedPod({ namespace: ns, labelSelector: `app.kubernetes.io/instance=${release}` }))
        .items[0]
    const pulling = await eventually('its pod is created', podState, 10_000, 100)
    assert.equal(pulling.status?.containerStatuses?.[0]?.state?.waiting?.reason, 'ContainerCreating')
    const running = await eventually(
      'its pod runs after the delay',
      async () => {
        const p = await podState()
        return p?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? p : null
      },
      30_000,
      200,
    )
    assert.ok(
      Date.parse(running.status!.conditions!.find((c) => c.type === 'Ready')!.lastTransitionTime as unknown as string) -
        Date.parse(ready.metadata.creationTimestamp!) >=
        5000,
      'Ready only after the delay',
    )
  })

  it('ignores an annotation-only change until a resync, and a restarted cdc observes at once', async () => {
    await sandbox().setEngineSettings({ resyncSeconds: 120 })
    await create('graceful')
    await eventually('graceful Ready', async () => (await readyReason('graceful')) === 'Available', 30_000)
    await sleep(6000) // resyncs queued at the old interval have fired; the next is minutes away
    await annotate('graceful', { 'krateo.io/gracefully-paused': 'true' })
    await sleep(4000)
    assert.equal(await readyReason('graceful'), 'Available', 'an annotation-only change is ignored')
    const restarted = Date.now()
    await sandbox().restartDeployment(ns, cdcDeployment)
    await eventually(
      'gracefully paused',
      async () => (await readyReason('graceful')) === 'ReconcileGracefullyPaused',
      20_000,
      100,
    )
    assert.ok(Date.now() - restarted < 20_000)
    assert.equal(cond(await get('graceful'), 'Ready')?.status, 'True', 'gracefully paused stays Ready')
  })

  it('a rolled-out cdc: its old pod is cut at once, or, with an overlap, finishes its render beside the new pod (no leader election)', async () => {
    const before = await sandbox().engineSettings()
    /** replicaCount of each release revision deployed after `since`. */
    const renderedSince = (release: string, since: number) =>
      (JSON.parse(helm('history', release, '-n', ns, '-o', 'json')) as { revision: number; updated: string }[])
        .filter((r) => Date.parse(r.updated) > since)
        .map(
          (r) =>
            (
              JSON.parse(helm('get', 'values', release, '-n', ns, '--revision', String(r.revision), '-o', 'json')) as {
                replicaCount?: number
              }
            ).replicaCount,
        )
    for (const [name, overlap] of [
      ['cut-at-once', 0],
      ['overlapping', 20],
    ] as const) {
      await sandbox().setEngineSettings({
        resyncSeconds: 120,
        renderSeconds: { [name]: 8 },
        cdcRolloutOverlapSeconds: overlap,
      })
      await create(name)
      const ready = await eventually(
        `${name} Ready`,
        async () => {
          const o = await get(name)
          return cond(o, 'Ready')?.status === 'True' ? o : null
        },
        30_000,
        200,
      )
      const release = ready.metadata.labels!['krateo.io/release-name']!
      const changed = Date.now()
      // The old pod starts rendering replicaCount 2; before its render ends, 3 is asked for and the cdc rolled out.
      await kube().custom.patchNamespacedCustomObject({ ...sse, name, body: { spec: { replicaCount: 2 } } }, mergePatch)
      await sleep(2500)
      await kube().custom.patchNamespacedCustomObject({ ...sse, name, body: { spec: { replicaCount: 3 } } }, mergePatch)
      await sandbox().restartDeployment(ns, cdcDeployment)
      await eventually(
        `${name}: the new pod's render (replicaCount 3) lands`,
        async () => renderedSince(release, changed).includes(3),
        60_000,
        500,
      )
      if (overlap)
        await eventually(
          "the old pod's render (replicaCount 2) lands too",
          async () => renderedSince(release, changed).includes(2),
          30_000,
          500,
        )
      else {
        await sleep(9000) // longer than the render the old pod had in flight
        assert.ok(!renderedSince(release, changed).includes(2), 'the old pod was cut: its render never reached helm')
      }
    }
    await sandbox().setEngineSettings({
      resyncSeconds: before.resyncSeconds,
      renderSeconds: {},
      cdcRolloutOverlapSeconds: 0,
    })
  })

  it('observes a change of krateo.io/paused at once (a watched annotation, no restart), and keeps a paused Composition Terminating until the pause goes', async () => {
    await create('paused')
    await eventually('paused Ready', async () => (await readyReason('paused')) === 'Available', 30_000)
    const pausedAt = Date.now()
    await annotate('paused', { 'krateo.io/paused': 'true' })
    await eventually(
      'pause observed',
      async () => cond(await get('paused'), 'Synced')?.reason === 'ReconcilePaused',
      60_000,
      100,
    )
    // Bounded at half the resync, not at what a quiet machine takes: it proves the watch, not speed.
    assert.ok(Date.now() - pausedAt < 60_000, 'far sooner than the 120 s resync, without a cdc restart')
    await kube().custom.deleteNamespacedCustomObject({ ...sse, name: 'paused' })
    await sleep(4000)
    const held = await get('paused')
    assert.ok(held?.metadata.deletionTimestamp, 'still Terminating')
    assert.deepEqual(held.metadata.finalizers, ['composition.krateo.io/finalizer'])
    const unpaused = Date.now()
    await annotate('paused', { 'krateo.io/paused': null })
    await eventually('paused gone', async () => (await get('paused')) === null, 60_000, 100)
    assert.ok(Date.now() - unpaused < 60_000, 'far sooner than the 120 s resync')
  })

  it('takes the configured time to delete a slow component, reporting Deleting meanwhile', async () => {
    await sandbox().setEngineSettings({ resyncSeconds: 5 })
    await create('slow-delete')
    await eventually('slow-delete Ready', async () => (await readyReason('slow-delete')) === 'Available', 30_000)
    const started = Date.now()
    await kube().custom.deleteNamespacedCustomObject({ ...sse, name: 'slow-delete' })
    await eventually('Deleting reported', async () => (await readyReason('slow-delete')) === 'Deleting', 10_000, 100)
    await eventually('slow-delete gone', async () => (await get('slow-delete')) === null, 30_000, 100)
    assert.ok(Date.now() - started >= 4500, `gone after ${Date.now() - started}ms`)
  })

  it("a cdc that loses its create race blocks with the contract's message until the pending mark is removed", async () => {
    await create('racer')
    const blocked = await eventually(
      'racer blocked',
      async () => {
        const o = await get('racer')
        return /cannot determine creation result/.test(cond(o, 'Synced')?.message ?? '') ? o : null
      },
      30_000,
    )
    assert.equal(cond(blocked, 'Synced')?.reason, 'ReconcileError')
    assert.ok(blocked.metadata.annotations?.['krateo.io/external-create-pending'])
    assert.equal(blocked.metadata.annotations?.['krateo.io/external-create-succeeded'], undefined)
    assert.doesNotMatch(helm('list', '-n', ns, '-q'), /racer/, 'nothing was installed')
    await sleep(6000)
    assert.match(
      cond(await get('racer'), 'Synced')?.message ?? '',
      /cannot determine creation result/,
      'a resync does not retry on its own',
    )
    await annotate('racer', { 'krateo.io/external-create-pending': null })
    const ready = await eventually(
      'racer Ready after the mark is removed',
      async () => {
        const o = await get('racer')
        return cond(o, 'Ready')?.status === 'True' ? o : null
      },
      30_000,
    )
    assert.ok(ready.metadata.annotations?.['krateo.io/external-create-succeeded'])
  })

  it('a CompositionDefinition is Unavailable until its CRD exists, blocks when its create result is lost, and on deletion waits for its Compositions, then drops bundle, CRD and finalizer', async () => {
    const stack = { group: 'composition.krateo.io', version: 'v0-2-1', namespace: ns, plural: 'krateoclickstacks' }
    await kube().custom.createNamespacedCustomObject({
      ...cdApi,
      body: {
        apiVersion: 'core.krateo.io/v1alpha1',
        kind: 'CompositionDefinition',
        metadata: { name: 'lost-cd' },
        spec: { chart: { url: `oci://${sandbox().registry}/charts/krateo-clickstack`, version: '0.2.1' } },
      },
    })
    const blocked = await eventually(
      'lost-cd blocked',
      async () => {
        const o = await getCd('lost-cd')
        return /cannot determine creation result/.test(cond(o, 'Synced')?.message ?? '') ? o : null
      },
      30_000,
    )
    assert.deepEqual(
      [cond(blocked, 'Ready')?.status, cond(blocked, 'Ready')?.reason, cond(blocked, 'Ready')?.message],
      [
        'False',
        'Unavailable',
        "crd for 'composition.krateo.io/v0-2-1, Resource=krateoclickstacks' does not exists yet",
      ],
    )
    assert.equal(cond(blocked, 'Synced')?.reason, 'ReconcileError')
    assert.deepEqual(blocked.metadata.finalizers, ['finalizer.managedresource.krateo.io'])
    assert.ok(blocked.metadata.annotations?.['krateo.io/external-create-pending'])
    await assert.rejects(
      kube().crds.readCustomResourceDefinition({ name: 'krateoclickstacks.composition.krateo.io' }),
      (e) => httpCode(e) === 404,
      'nothing created while blocked',
    )
    await kube().custom.patchNamespacedCustomObject(
      { ...cdApi, name: 'lost-cd', body: { metadata: { annotations: { 'krateo.io/external-create-pending': null } } } },
      mergePatch,
    )
    await eventually(
      'lost-cd Ready once the mark is gone',
      async () => cond(await getCd('lost-cd'), 'Ready')?.status === 'True',
      60_000,
    )

    await kube().custom.createNamespacedCustomObject({
      ...stack,
      body: {
        apiVersion: 'composition.krateo.io/v0-2-1',
        kind: 'KrateoClickstack',
        metadata: { name: 'held' },
        spec: {},
      },
    })
    await eventually(
      'held Ready',
      async () =>
        cond((await kube().custom.getNamespacedCustomObject({ ...stack, name: 'held' })) as Obj, 'Ready')?.status ===
        'True',
      30_000,
    )
    await kube().custom.deleteNamespacedCustomObject({ ...cdApi, name: 'lost-cd' })
    const waiting = await eventually(
      'lost-cd waits for its Compositions',
      async () => {
        const o = await getCd('lost-cd')
        return /waiting for composition deletion$/.test(cond(o, 'Synced')?.message ?? '') ? o : null
      },
      15_000,
      100,
    )
    assert.equal(
      cond(waiting, 'Synced')?.message,
      'observe failed: error undeploying CompositionDefinition: waiting for composition deletion',
    )
    assert.equal(cond(waiting, 'Ready')?.reason, 'Deleting')
    assert.ok(
      ((await kube().custom.getNamespacedCustomObject({ ...stack, name: 'held' })) as Obj).metadata.deletionTimestamp,
      "core-provider deleted the last kind's Compositions",
    )
    await eventually('lost-cd gone', async () => (await getCd('lost-cd')) === null, 30_000, 100)
    // core-provider has asked for both before dropping its finalizer; the API removes them a moment later.
    const gone = (read: () => Promise<unknown>) => async () =>
      await read().then(
        () => false,
        (e) => {
          if (httpCode(e) === 404) return true
          throw e
        },
      )
    await eventually(
      'its CRD removed',
      gone(() => kube().crds.readCustomResourceDefinition({ name: 'krateoclickstacks.composition.krateo.io' })),
      15_000,
      100,
    )
    await eventually(
      'its cdc bundle removed',
      gone(() => kube().apps.readNamespacedDeployment({ name: 'krateoclickstacks-v0-2-1-controller', namespace: ns })),
      15_000,
      100,
    )
  })

  it('deletion-policy orphan: deleting the CompositionDefinition leaves its CRD, cdc and Compositions', async () => {
    await kube().custom.patchNamespacedCustomObject(
      { ...cdApi, name: 'sse', body: { metadata: { annotations: { 'krateo.io/deletion-policy': 'orphan' } } } },
      mergePatch,
    )
    await kube().custom.deleteNamespacedCustomObject({ ...cdApi, name: 'sse' })
    await eventually('CD sse gone', async () => (await getCd('sse')) === null, 30_000)
    await kube().crds.readCustomResourceDefinition({ name: 'krateosseproxies.composition.krateo.io' })
    await kube().apps.readNamespacedDeployment({ name: cdcDeployment, namespace: ns })
    assert.equal((await get('slow-ready'))?.metadata.deletionTimestamp, undefined, 'its Compositions are left alone')
  })
})
