// Uninstall beside a user's own objects: a platform team's blueprint (CompositionDefinition and Composition)
// in the platform's namespace, the same blueprint in another namespace, another platform's webhook, a
// ConfigMap that looks like a cdc bundle, a RestDefinition and a PVC of theirs. uninstall, --purge and
// --force remove the platform and leave every one of them as it was; on a namespace without a platform
// nothing is changed at all.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { AdmissionregistrationV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import { eventually, httpCode, useSandbox, TEST_RESYNC_SECONDS } from '../helpers/sandbox.js'
import { cliFor, sandboxFlags } from '../helpers/cli.js'

const NS = 'krateo-system'
const JsonPatch = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch)
const CD = { group: 'core.krateo.io', version: 'v1alpha1', plural: 'compositiondefinitions' }

describe("uninstall beside objects that are not the platform's", () => {
  const { sandbox, kube } = useSandbox({ engineSettings: { resyncSeconds: TEST_RESYNC_SECONDS } })
  const { cli, kc, install } = cliFor(sandbox)
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
    for (const ns of [NS, 'team-a']) {
      if (!(await exists(() => custom.getNamespacedCustomObject({ ...CD, namespace: ns, name: 'fireworksapp' }))))
        await custom.createNamespacedCustomObject({ ...CD, namespace: ns, body: blueprint(ns) })
    }
    await eventually(
      "the blueprint's CRD",
      async () =>
        (await crds.readCustomResourceDefinition({ name: 'fireworksapps.composition.krateo.io' })).spec.versions.some(
          (v) => v.name === 'v1-0-0' && v.served,
        ),
      90_000,
      500,
    )
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
      60_000,
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
      60_000,
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

  it('on a namespace where no platform is or was installed, uninstall --purge --yes changes nothing', async () => {
    await ensureNs('team-a')
    await kube().core.createNamespacedPersistentVolumeClaim({
      namespace: 'team-a',
      body: {
        metadata: { name: 'team-data' },
        spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
      },
    })
    const res = await cli(['uninstall', ...kc(), '-n', 'team-a', '--purge', '--yes'])
    assert.equal(res.code, 0, res.stdout + res.stderr)
    assert.match(
      res.stdout,
      /Nothing to uninstall in team-a\.\n--purge removed nothing: no Krateo platform is or was installed in team-a/,
    )
    assert.ok(
      await exists(() => kube().core.readNamespacedPersistentVolumeClaim({ name: 'team-data', namespace: 'team-a' })),
      'the PVC',
    )
    assert.equal(
      (await kube().core.readNamespace({ name: 'team-a' })).metadata?.deletionTimestamp,
      undefined,
      'the namespace',
    )
  })

  it('uninstall --purge --yes removes the platform and keeps every object of the user, naming why', async () => {
    await install()
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
    const res = await cli(['uninstall', ...kc(), '--purge', '--yes', '--timeout', '4m'])
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
  })

  it('--force and --purge without --yes and without a terminal are refused before anything changes', async () => {
    await install()
    for (const flag of ['--force', '--purge']) {
      const res = await cli(['uninstall', ...kc(), flag])
      assert.equal(res.code, 9, res.stdout + res.stderr)
      assert.match(
        res.stderr,
        new RegExp(
          `^Error: uninstall ${flag} needs confirmation, and there is no terminal to ask at \\(context .*namespace krateo-system; .*\\); nothing was changed; pass --yes`,
          'm',
        ),
      )
    }
    const status = await cli(['status', ...kc(), '-o', 'json'])
    assert.equal(JSON.parse(status.stdout).phase, 'Ready', 'nothing was paused or deleted')
  })

  it('a stuck cdc: uninstall names its real Deployment and leaves the Installer paused for a re-run; --force --yes removes only that finalizer', async () => {
    await createForeignObjects()
    await sandbox().scaleDeployment(NS, 'authns-v0-22-0-controller', 0)
    const stuck = await cli(['uninstall', ...kc(), '--timeout', '5m'])
    assert.equal(stuck.code, 7, stuck.stdout + stuck.stderr)
    assert.match(
      stuck.stderr,
      /^Error: Authn\/authn is stuck Terminating on finalizer composition\.krateo\.io\/finalizer \(cleared by the cdc Deployment authns-v0-22-0-controller, which is not running\); start that controller again, or re-run with --force --yes/m,
    )
    const status = await cli(['status', ...kc(), '-o', 'json'])
    assert.match(
      JSON.parse(status.stdout).pausedBy,
      /^paused by krateo-installer uninstall at \S+: re-run that command to resume the uninstall$/,
    )
    const meanwhile = await cli(['install', ...sandboxFlags(sandbox()), '--exposure', 'LoadBalancer'])
    assert.equal(meanwhile.code, 2, meanwhile.stdout + meanwhile.stderr)
    assert.match(
      meanwhile.stderr,
      /^Error: an uninstall of the platform in krateo-system is under way \(paused by krateo-installer uninstall at \S+\); finish it first with: krateo-installer uninstall -n krateo-system/m,
    )
    const forced = await cli(['uninstall', ...kc(), '--force', '--yes', '--timeout', '4m'])
    assert.equal(forced.code, 0, forced.stdout + forced.stderr)
    assert.match(
      forced.stdout,
      /--force: removing finalizers of Authn\/authn: composition\.krateo\.io\/finalizer \(cleared by the cdc Deployment authns-v0-22-0-controller, which is not running\)/,
    )
    assert.match(
      forced.stdout,
      /Forced \(check what may be left behind\):\n {2}Authn\/authn \(finalizers composition\.krateo\.io\/finalizer; may be left behind: /,
    )
    await assertPlatformGone()
    await assertForeignUntouched()
  })

  it('core-provider down (its fail-closed webhook refuses writes): uninstall says so; --force --yes removes only our webhook and finishes', async () => {
    await install()
    await sandbox().scaleDeployment(NS, 'core-provider', 0)
    const refused = await cli(['uninstall', ...kc(), '--timeout', '3m'])
    assert.equal(refused.code, 7, refused.stdout + refused.stderr)
    assert.match(
      refused.stderr,
      /^Error: cannot pause the Installer CR: core-provider is not running, and its webhook krateo refuses every write to Compositions; start Deployment core-provider in krateo-system again .*or re-run with --force --yes to remove this platform's webhook krateo first/m,
    )
    const forced = await cli(['uninstall', ...kc(), '--force', '--yes', '--timeout', '4m'])
    assert.equal(forced.code, 0, forced.stdout + forced.stderr)
    assert.match(forced.stdout, /MutatingWebhookConfiguration\/krateo \(core-provider was down\)/)
    await assertPlatformGone()
    await assertForeignUntouched()
  })

  it('an object a platform release listed, held by a finalizer nobody clears: named at the deadline (exit 7); --force --yes removes only that, never what it has not waited for', async () => {
    await install()
    // The portal's page, with a finalizer of a controller that does not exist (a broken or removed one).
    const page = {
      group: 'widgets.templates.krateo.io',
      version: 'v1beta1',
      namespace: NS,
      plural: 'pages',
      name: 'dashboard',
    }
    const held =
      ((await kube().custom.getNamespacedCustomObject(page)) as { metadata: { finalizers?: string[] } }).metadata
        .finalizers ?? []
    await kube().custom.patchNamespacedCustomObject(
      { ...page, body: [{ op: 'add', path: '/metadata/finalizers', value: [...held, 'test.krateo.io/hold'] }] },
      JsonPatch,
    )
    const stuck = await cli(['uninstall', ...kc(), '--timeout', '70s'])
    assert.equal(stuck.code, 7, stuck.stdout + stuck.stderr)
    assert.match(
      stuck.stdout,
      /portal: waiting for pages\/dashboard \(released by helm uninstall\) to be finalized \(finalizers test\.krateo\.io\/hold\)/,
    )
    assert.match(
      stuck.stderr,
      /^Error: pages\/dashboard of portal is stuck Terminating on finalizer test\.krateo\.io\/hold \(cleared by the controller of test\.krateo\.io\); start that controller again, or re-run with --force --yes/m,
    )
    const frontend = async () =>
      (
        (await kube().custom.listNamespacedCustomObject({
          group: 'composition.krateo.io',
          version: 'v0-24-0',
          namespace: NS,
          plural: 'frontends',
        })) as { items: { metadata: { deletionTimestamp?: string; finalizers?: string[] } }[] }
      ).items[0]
    assert.equal(
      (await frontend())?.metadata.deletionTimestamp,
      undefined,
      'frontend, which finalizes pages, is not drained while one waits',
    )

    // --force waits to its own deadline, then removes the hold; nothing is started or forced after the deadline (exit 6).
    const forced = await cli(['uninstall', ...kc(), '--force', '--yes', '--timeout', '40s'])
    assert.equal(forced.code, 6, forced.stdout + forced.stderr)
    assert.match(
      forced.stdout,
      /--force: removing finalizers of pages\/dashboard of portal: test\.krateo\.io\/hold \(cleared by the controller of test\.krateo\.io\)/,
    )
    assert.match(forced.stdout, /pages\/dashboard of portal: gone \(forced\)/)
    assert.equal(forced.stdout.match(/--force: removing/g)?.length, 1, 'nothing else forced')
    assert.match(
      forced.stderr,
      /^Error: timed out before draining \S+; re-run uninstall to continue, or raise --timeout$/m,
    )
    assert.equal((await frontend())?.metadata.deletionTimestamp, undefined, 'frontend is left for the next run')
    const done = await cli(['uninstall', ...kc(), '--timeout', '4m'])
    assert.equal(done.code, 0, done.stdout + done.stderr)
    await assertPlatformGone()
    await assertForeignUntouched()
  })

  // Last: the bump puts core-provider's conversion webhook on the user's kind for good.
  it("a user's blueprint moved to a new version reads through core-provider: uninstall names it, asks first, and it is unreadable after", async () => {
    await install()
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
      90_000,
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
    const res = await cli(['uninstall', ...kc(), '--yes', '--timeout', '4m'])
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
  })
})
