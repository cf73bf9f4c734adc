// The user's own objects beside the platform, written once and run against each engine (ownership.test.ts on the
// simulator, real-engine.test.ts): a platform team's blueprint (CompositionDefinition and Composition) in the
// platform's namespace, the same blueprint in another namespace, another platform's webhook, a ConfigMap and a
// ClusterRole named like a cdc bundle, a RestDefinition and a PVC of theirs.
import assert from 'node:assert/strict'
import { AdmissionregistrationV1Api } from '@kubernetes/client-node'
import { eventually, httpCode } from './sandbox.js'
import type { ScenarioContext } from './scenarios.js'

export const NS = 'krateo-system'
export const CD = { group: 'core.krateo.io', version: 'v1alpha1', plural: 'compositiondefinitions' }

/**
 * The user's objects, and checks that each is still there, untouched, and that the platform is gone. waitMs: how
 * long a generated CRD may take (the real core-provider runs controller-gen for each).
 */
export function userObjects(t: Pick<ScenarioContext, 'sandbox' | 'kube'>, { waitMs = 90_000 } = {}) {
  const { sandbox, kube } = t
  const exists = async (fn: () => Promise<unknown>) => {
    try {
      await fn()
      return true
    } catch (e) {
      if (httpCode(e) === 404) return false
      throw e
    }
  }
  const ensureNs = async (name: string) => {
    if (!(await exists(() => kube().core.readNamespace({ name }))))
      await kube().core.createNamespace({ body: { metadata: { name } } })
  }
  const blueprint = (namespace: string) => ({
    apiVersion: 'core.krateo.io/v1alpha1',
    kind: 'CompositionDefinition',
    metadata: { name: 'fireworksapp', namespace },
    spec: { chart: { url: `oci://${sandbox().registry}/charts/fireworksapp`, version: '1.0.0' } },
  })

  /** The user's objects; each check says whether it is still there, untouched. */
  async function createForeignObjects(withRestDefinition = false): Promise<void> {
    const { custom, core, rbac, crds } = kube()
    await ensureNs('team-a')
    await ensureNs(NS)
    // One namespace after the other: the real core-provider generates a chart's CRD in one work directory per
    // chart (/tmp/<chart>-crdgen), so two definitions of one chart reconciled together remove each other's files
    // ("no such file or directory"), and under load their retries went on past 5 minutes (a full run). A team
    // adds its second namespace to a kind that exists.
    for (const ns of [NS, 'team-a']) {
      if (!(await exists(() => custom.getNamespacedCustomObject({ ...CD, namespace: ns, name: 'fireworksapp' }))))
        await custom.createNamespacedCustomObject({ ...CD, namespace: ns, body: blueprint(ns) })
      await eventually(
        "the blueprint's CRD",
        async () =>
          (await crds.readCustomResourceDefinition({ name: 'fireworksapps.composition.krateo.io' })).spec.versions.some(
            (v) => v.name === 'v1-0-0' && v.served,
          ),
        waitMs,
        500,
      )
    }
    await eventually(
      "the blueprint's Composition is accepted",
      async () => {
        if (
          await exists(() =>
            custom.getNamespacedCustomObject({
              group: 'composition.krateo.io',
              version: 'v1-0-0',
              namespace: NS,
              plural: 'fireworksapps',
              name: 'my-shop',
            }),
          )
        )
          return true
        await custom.createNamespacedCustomObject({
          group: 'composition.krateo.io',
          version: 'v1-0-0',
          namespace: NS,
          plural: 'fireworksapps',
          body: {
            apiVersion: 'composition.krateo.io/v1-0-0',
            kind: 'Fireworksapp',
            metadata: { name: 'my-shop' },
            spec: {},
          },
        })
        return true
      },
      waitMs,
      1000,
    )
    const admission = kube().kc.makeApiClient(AdmissionregistrationV1Api)
    if (!(await exists(() => admission.readMutatingWebhookConfiguration({ name: 'team-b-core-provider' })))) {
      await admission.createMutatingWebhookConfiguration({
        body: {
          metadata: { name: 'team-b-core-provider' },
          webhooks: [
            {
              name: 'core.provider.krateo.io',
              clientConfig: { service: { namespace: 'team-b', name: 'core-provider-webhook' } },
              rules: [{ operations: ['CREATE'], apiGroups: ['example.invalid'], apiVersions: ['*'], resources: ['*'] }],
              failurePolicy: 'Ignore',
              sideEffects: 'None',
              admissionReviewVersions: ['v1'],
            },
          ],
        },
      })
    }
    const createIfMissing = async (read: () => Promise<unknown>, create: () => Promise<unknown>) => {
      if (!(await exists(read))) await create()
    }
    await createIfMissing(
      () => core.readNamespacedConfigMap({ name: 'billing-v1-2-3-configmap', namespace: NS }),
      () =>
        core.createNamespacedConfigMap({
          namespace: NS,
          body: { metadata: { name: 'billing-v1-2-3-configmap' }, data: { a: 'b' } },
        }),
    )
    await createIfMissing(
      () => rbac.readClusterRole({ name: 'billing-v1-2-3' }),
      () => rbac.createClusterRole({ body: { metadata: { name: 'billing-v1-2-3' }, rules: [] } }),
    )
    await createIfMissing(
      () => core.readNamespacedPersistentVolumeClaim({ name: 'user-data', namespace: NS }),
      () =>
        core.createNamespacedPersistentVolumeClaim({
          namespace: NS,
          body: {
            metadata: { name: 'user-data' },
            spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
          },
        }),
    )
    if (!withRestDefinition) return
    await createIfMissing(
      () =>
        custom.getNamespacedCustomObject({
          group: 'ogen.krateo.io',
          version: 'v1alpha1',
          namespace: 'team-a',
          plural: 'restdefinitions',
          name: 'billing-api',
        }),
      () =>
        custom.createNamespacedCustomObject({
          group: 'ogen.krateo.io',
          version: 'v1alpha1',
          namespace: 'team-a',
          plural: 'restdefinitions',
          body: {
            apiVersion: 'ogen.krateo.io/v1alpha1',
            kind: 'RestDefinition',
            metadata: { name: 'billing-api' },
            spec: {
              oasPath: 'https://example.invalid/billing.yaml',
              resourceGroup: 'billing.hyperdx.krateo.io',
              resource: { kind: 'Invoice', identifiers: ['id'] },
            },
          },
        }),
    )
    await eventually(
      "oasgen-provider generated the user's CRD",
      async () => await exists(() => crds.readCustomResourceDefinition({ name: 'invoices.billing.hyperdx.krateo.io' })),
      waitMs,
      500,
    )
  }

  async function assertForeignUntouched(): Promise<void> {
    const { custom, core, rbac, crds } = kube()
    const admission = kube().kc.makeApiClient(AdmissionregistrationV1Api)
    for (const ns of [NS, 'team-a']) {
      const cd = (await custom.getNamespacedCustomObject({ ...CD, namespace: ns, name: 'fireworksapp' })) as {
        metadata: { deletionTimestamp?: string }
      }
      assert.equal(cd.metadata.deletionTimestamp, undefined, `the user's CompositionDefinition in ${ns} is not deleted`)
    }
    const shop = (await custom.getNamespacedCustomObject({
      group: 'composition.krateo.io',
      version: 'v1-0-0',
      namespace: NS,
      plural: 'fireworksapps',
      name: 'my-shop',
    })) as { metadata: { deletionTimestamp?: string } }
    assert.equal(shop.metadata.deletionTimestamp, undefined, "the user's Composition is not deleted")
    assert.ok(
      await exists(() => crds.readCustomResourceDefinition({ name: 'fireworksapps.composition.krateo.io' })),
      "the blueprint's CRD",
    )
    assert.ok(
      await exists(() => admission.readMutatingWebhookConfiguration({ name: 'team-b-core-provider' })),
      "another platform's webhook",
    )
    assert.ok(
      await exists(() => core.readNamespacedConfigMap({ name: 'billing-v1-2-3-configmap', namespace: NS })),
      'a ConfigMap named like a cdc bundle',
    )
    assert.ok(
      await exists(() => rbac.readClusterRole({ name: 'billing-v1-2-3' })),
      'a ClusterRole named like a cdc bundle',
    )
    const pvc = await core.readNamespacedPersistentVolumeClaim({ name: 'user-data', namespace: NS })
    assert.equal(pvc.metadata?.deletionTimestamp, undefined, "the user's PVC")
    const ns = await core.readNamespace({ name: NS })
    assert.equal(ns.metadata?.deletionTimestamp, undefined, 'the namespace holding them')
    assert.ok(
      await exists(() => crds.readCustomResourceDefinition({ name: 'invoices.billing.hyperdx.krateo.io' })),
      "the CRD generated from the user's RestDefinition",
    )
    assert.ok(
      await exists(() => crds.readCustomResourceDefinition({ name: 'compositiondefinitions.core.krateo.io' })),
      'the CompositionDefinition CRD, still in use',
    )
  }

  async function assertPlatformGone(): Promise<void> {
    const { custom, crds } = kube()
    const left = (await crds.listCustomResourceDefinition()).items.map((c) => c.metadata!.name!)
    assert.deepEqual(
      left.filter((n) => n.endsWith('.composition.krateo.io') && n !== 'fireworksapps.composition.krateo.io'),
      [],
      'no CRD generated for the platform',
    )
    assert.ok(
      !left.includes('dashboards.hyperdx.krateo.io'),
      "the CRD generated from the platform's RestDefinition is gone",
    )
    const cds = (
      (await custom.listNamespacedCustomObject({ ...CD, namespace: NS })) as { items: { metadata: { name: string } }[] }
    ).items.map((c) => c.metadata.name)
    assert.deepEqual(cds, ['fireworksapp'], "only the user's CompositionDefinition is left")
    const hooks = (
      await kube().kc.makeApiClient(AdmissionregistrationV1Api).listMutatingWebhookConfiguration()
    ).items.map((h) => h.metadata!.name)
    // krateo-sandbox-kubelet is the sandbox's own pod webhook: not the platform's either, so kept too.
    assert.deepEqual(
      hooks.sort(),
      ['krateo-sandbox-kubelet', 'team-b-core-provider'],
      "the platform's webhook is gone, the others kept",
    )
    const cms = (await kube().core.listNamespacedConfigMap({ namespace: NS })).items.map((c) => c.metadata!.name!)
    assert.deepEqual(
      cms.filter((n) => /-v\d+-\d+-\d+-/.test(n) && !n.startsWith('fireworksapps-') && !n.startsWith('billing-')),
      [],
      'no cdc bundle of the platform',
    )
  }
  return { exists, ensureNs, blueprint, createForeignObjects, assertForeignUntouched, assertPlatformGone }
}

/**
 * uninstall --purge --yes on a Ready platform beside the user's objects: refused while the user's RestDefinition
 * would go with the platform's CRD, then, once the user moved it, removes the platform and keeps every object of
 * the user, naming why; a second run has nothing to do.
 */
export async function purgeKeepsUserObjects(
  t: ScenarioContext,
  { timeout = '4m', waitMs = 90_000 }: { timeout?: string; waitMs?: number } = {},
): Promise<void> {
  const { cli, kc, kube } = t
  const { exists, createForeignObjects, assertForeignUntouched, assertPlatformGone } = userObjects(t, { waitMs })
  await createForeignObjects(true)
  const plan = await cli(['uninstall', ...kc(), '--dry-run'])
  assert.equal(plan.code, 0, plan.stderr)
  assert.match(
    plan.stdout,
    /Not the platform's, kept:\n {2}CompositionDefinition krateo-system\/fireworksapp\n {2}MutatingWebhookConfiguration team-b-core-provider/,
  )
  // The user's RestDefinition would go with the RestDefinition CRD the platform's oasgen-provider-crd ships:
  // uninstall refuses, changing nothing, until the user has moved it.
  assert.match(
    plan.stdout,
    /would be deleted with the platform \(uninstall refuses until they are moved or gone\):.*\n {2}RestDefinition team-a\/billing-api \(its CRD restdefinitions\.ogen\.krateo\.io goes with the platform's oasgen-provider-crd\)/,
  )
  const refused = await cli(['uninstall', ...kc(), '--purge', '--yes'])
  assert.equal(refused.code, 7, refused.stdout + refused.stderr)
  assert.match(
    refused.stderr,
    /^Error: uninstalling would delete 1 object that is not the platform's: RestDefinition team-a\/billing-api .*; nothing was changed; move or delete them yourself first/m,
  )
  assert.equal(
    JSON.parse((await cli(['status', ...kc(), '-o', 'json'])).stdout).phase,
    'Ready',
    'nothing was paused or deleted',
  )
  await kube().custom.deleteNamespacedCustomObject({
    group: 'ogen.krateo.io',
    version: 'v1alpha1',
    namespace: 'team-a',
    plural: 'restdefinitions',
    name: 'billing-api',
  })
  await eventually(
    "the user's RestDefinition is gone",
    async () =>
      !(await exists(() =>
        kube().custom.getNamespacedCustomObject({
          group: 'ogen.krateo.io',
          version: 'v1alpha1',
          namespace: 'team-a',
          plural: 'restdefinitions',
          name: 'billing-api',
        }),
      )),
    30_000,
  )
  const res = await cli(['uninstall', ...kc(), '--purge', '--yes', '--timeout', timeout])
  assert.equal(res.code, 0, res.stdout + res.stderr)
  assert.match(res.stdout, /1 CompositionDefinitions here are not the platform's and are kept/)
  assert.match(
    res.stdout,
    /Namespace krateo-system: holds \d+ objects that are not the platform's \(.*\), so it is kept/,
  )
  assert.match(
    res.stdout,
    /CustomResourceDefinition compositiondefinitions\.core\.krateo\.io: 2 CompositionDefinitions in 2 namespaces .* still use it, so it is kept/,
  )
  await assertPlatformGone()
  await assertForeignUntouched()
  // A second run has nothing left to do and still touches nothing.
  const again = await cli(['uninstall', ...kc(), '--purge', '--yes'])
  assert.equal(again.code, 0, again.stdout + again.stderr)
  assert.match(again.stdout, /Nothing to uninstall in krateo-system/)
  await assertForeignUntouched()
}

/**
 * A user's blueprint moved to a new version (another namespace's definition of the same chart): its kind now reads
 * through core-provider's conversion webhook. uninstall names it in the plan, asks first (no terminal: refused,
 * nothing changed), and with --yes removes the platform; after that the user's objects of that kind are unreadable,
 * which is what it asked about. Run last: the webhook stays on the user's kind.
 */
export async function bumpedBlueprintUnreadableAfter(
  t: ScenarioContext,
  { timeout = '4m', waitMs = 90_000 }: { timeout?: string; waitMs?: number } = {},
): Promise<void> {
  const { cli, kc, kube, sandbox } = t
  const { ensureNs, blueprint, createForeignObjects, assertPlatformGone } = userObjects(t, { waitMs })
  await createForeignObjects()
  await ensureNs('team-c')
  const { custom, crds } = kube()
  await custom.createNamespacedCustomObject({
    ...CD,
    namespace: 'team-c',
    body: {
      ...blueprint('team-c'),
      spec: { chart: { url: `oci://${sandbox().registry}/charts/fireworksapp`, version: '1.1.0' } },
    },
  })
  await eventually(
    "the blueprint's CRD converts through core-provider",
    async () => {
      const crd = await crds.readCustomResourceDefinition({ name: 'fireworksapps.composition.krateo.io' })
      return (
        crd.spec.versions.some((v) => v.name === 'v1-1-0' && v.served) && crd.spec.conversion?.strategy === 'Webhook'
      )
    },
    waitMs,
    500,
  )
  const plan = await cli(['uninstall', ...kc(), '--dry-run', '--json'])
  assert.equal(plan.code, 0, plan.stderr)
  assert.deepEqual(JSON.parse(plan.stdout).notOurs.unreadableAfter, [
    'Fireworksapp (CRD fireworksapps.composition.krateo.io)',
  ])
  const refused = await cli(['uninstall', ...kc()])
  assert.equal(refused.code, 9, refused.stdout + refused.stderr)
  assert.match(
    refused.stderr,
    /^Error: uninstall needs confirmation, and there is no terminal to ask at \(1 kind not the platform's would be unreadable \(get, list, delete fail\) until a core-provider runs again.*Fireworksapp \(CRD fireworksapps\.composition\.krateo\.io\).*delete their CompositionDefinitions and Compositions first\); nothing was changed; pass --yes/m,
  )
  assert.equal(
    JSON.parse((await cli(['status', ...kc(), '-o', 'json'])).stdout).phase,
    'Ready',
    'nothing was paused or deleted',
  )
  const res = await cli(['uninstall', ...kc(), '--yes', '--timeout', timeout])
  assert.equal(res.code, 0, res.stdout + res.stderr)
  await assertPlatformGone()
  // What the question was about: with core-provider gone, the user's objects of that kind cannot be read.
  // (read at the new version: an object stored at the version asked for needs no conversion)
  const read = await custom
    .getNamespacedCustomObject({
      group: 'composition.krateo.io',
      version: 'v1-1-0',
      namespace: NS,
      plural: 'fireworksapps',
      name: 'my-shop',
    })
    .then(
      () => 200,
      (e: unknown) => httpCode(e),
    )
  assert.notEqual(read, 200, 'the conversion webhook has nobody to answer it')
}
