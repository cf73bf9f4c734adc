// Uninstall beside a user's own objects: a platform team's blueprint (CompositionDefinition and Composition)
// in the platform's namespace, the same blueprint in another namespace, another platform's webhook, a
// ConfigMap that looks like a cdc bundle, a RestDefinition and a PVC of theirs. uninstall, --purge and
// --force remove the platform and leave every one of them as it was; on a namespace without a platform
// nothing is changed at all.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import { eventually, useSandbox, TEST_RESYNC_SECONDS } from '../helpers/sandbox.js'
import { cliFor, sandboxFlags } from '../helpers/cli.js'
import { POD_CRASH_LOOP } from '../../sandbox/engine/webhook.js'
import { bumpedBlueprintUnreadableAfter, NS, purgeKeepsUserObjects, userObjects } from '../helpers/user-objects.js'

const JsonPatch = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch)

describe("uninstall beside objects that are not the platform's", () => {
  const { sandbox, kube } = useSandbox({ engineSettings: { resyncSeconds: TEST_RESYNC_SECONDS } })
  const { cli, kc, install } = cliFor(sandbox)
  const { exists, ensureNs, createForeignObjects, assertForeignUntouched, assertPlatformGone } = userObjects({
    sandbox,
    kube,
  })

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
    await purgeKeepsUserObjects({ sandbox, kube, ...cliFor(sandbox) })
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

  it('a stuck cdc: uninstall names its real Deployment and leaves the Installer paused for a re-run; --force --yes removes only that finalizer', async (t) => {
    await createForeignObjects()
    // The cdc crash-loops (a scaled-down one would not last: core-provider applies it again, engine-contract).
    await sandbox().setEngineSettings({ neverReady: { authns: 'panic: runtime error' } })
    t.after(() => sandbox().setEngineSettings({ neverReady: {} }))
    // Its pod goes and the next one crash-loops (one made before the agent read the knob goes too).
    const cdc = { namespace: NS, labelSelector: 'app.kubernetes.io/name=authns-v0-22-0-controller' }
    await eventually(
      'the cdc crash-looping',
      async () => {
        const pods = (await kube().core.listNamespacedPod(cdc)).items
        for (const pod of pods)
          if (!pod.metadata!.annotations?.[POD_CRASH_LOOP] && !pod.metadata!.deletionTimestamp)
            await kube().core.deleteNamespacedPod({ name: pod.metadata!.name!, namespace: NS })
        const d = await kube().apps.readNamespacedDeployment({ name: 'authns-v0-22-0-controller', namespace: NS })
        return (
          (d.status?.availableReplicas ?? 0) === 0 &&
          pods.length > 0 &&
          pods.every((p) => p.metadata!.annotations?.[POD_CRASH_LOOP])
        )
      },
      60_000,
      1000,
    )
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
    // Stuck takes 20 s unchanged seen by the run itself: 60 s leaves that after a start slowed by load (full runs).
    const forced = await cli(['uninstall', ...kc(), '--force', '--yes', '--timeout', '60s'])
    assert.equal(forced.code, 6, forced.stdout + forced.stderr)
    const said = `${forced.stdout}${forced.stderr}`
    assert.match(
      forced.stdout,
      /--force: removing finalizers of pages\/dashboard of portal: test\.krateo\.io\/hold \(cleared by the controller of test\.krateo\.io\)/,
      said,
    )
    assert.match(forced.stdout, /pages\/dashboard of portal: gone \(forced\)/, said)
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
    await bumpedBlueprintUnreadableAfter({ sandbox, kube, ...cliFor(sandbox) })
  })
})
