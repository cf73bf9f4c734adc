// The one wait for an object of the platform to disappear, and what --force may do when it is stuck (the
// verdict itself is pure: platform/drain.ts goneVerdict).
import { isNotFound, requestPath } from '../../cluster/cluster.js'
import { nudgeComposition } from '../../cluster/kube-write.js'
import { type ObjectWatch, nap } from '../../cluster/watch.js'
import {
  type FinalizerController,
  allControllersDown,
  COMPOSITION_FINALIZER,
  finalizerController,
  goneVerdict,
  STUCK_AFTER_MS,
} from '../../platform/drain.js'
import { ExitCode, UserError } from '../../platform/errors.js'
import { type KObj } from '../../platform/kobj.js'
import { COMPOSITION_GROUP } from '../../platform/ownership.js'
import { conditionOf } from '../../platform/objects.js'
import type { StepReport } from '../../ui/progress.js'
import type { TeardownRun } from './run.js'
import { compositionWrite, ourWebhookRefusing, removeRefusingWebhook } from './webhook-guard.js'

/** How waitGone treats one object: who clears its finalizers, what forcing may leave behind, what it reports. */
export interface GoneWait {
  /** The CompositionDefinition whose cdc clears composition.krateo.io/finalizer. */
  cd?: KObj
  /** What may be left behind when its finalizers are forced. */
  orphans: string
  /** More to say about the wait (a hook Job's pod), asked at most every 5 s. */
  detail?: () => Promise<string>
  /** The progress line, given the finalizers left (default: the object's Terminating state). */
  progress?: (finalizers: string[]) => string
}

export interface GoneTarget {
  collection: string
  name: string
}

export const targetOf = (ref: {
  group: string
  version: string
  namespace: string
  plural: string
  name: string
}): GoneTarget => ({
  collection: `/apis/${ref.group}/${ref.version}/namespaces/${ref.namespace}/${ref.plural}`,
  name: ref.name,
})

/**
 * Waits for one of our objects to disappear. Stuck (goneVerdict) without --force: named, exit 7. With --force
 * (confirmed): only the finalizers of the controllers that are down (all of them at the deadline) are removed,
 * guarded by the object's resourceVersion.
 */
export async function waitGone(
  t: TeardownRun,
  label: string,
  first: GoneTarget,
  report: StepReport,
  how: GoneWait,
): Promise<'gone' | 'forced'> {
  let target = first
  let [forced, lastVersion] = [false, '']
  let unchangedSince = Date.now()
  let firstVersion: string | undefined
  let downSince: number | null = null
  const detail = throttled(how.detail)
  const blocked: WebhookBlock = { since: null, lookedAt: 0, webhook: null, nudged: false }
  let w = t.watchObject(target.collection, target.name)
  try {
    for (;;) {
      t.check()
      const now = await t.followServed(w)
      if (now === 'gone') return forced ? 'forced' : 'gone'
      if (now !== w) [w, target] = [now, { ...target, collection: now.collectionPath }]
      const obj = w.current
      if (obj === null) return forced ? 'forced' : 'gone'
      const controllers = (obj?.metadata.finalizers ?? []).map((f) =>
        finalizerController(f, how.cd, t.namespace, t.inventory?.coreProviders ?? []),
      )
      const watches = [w, ...controllerWatches(t, controllers)]
      if (obj === undefined) {
        await nap(watches, 1000)
        continue
      }
      firstVersion ??= obj.metadata.resourceVersion ?? ''
      if (obj.metadata.resourceVersion !== lastVersion) {
        lastVersion = obj.metadata.resourceVersion ?? ''
        unchangedSince = Date.now()
      }
      const fins = obj.metadata.finalizers ?? []
      const down = controllers.filter((c) => c.deployment && t.deploymentRunning(c.deployment, c.namespace) === false)
      downSince = allControllersDown(fins, controllers, down) ? (downSince ?? Date.now()) : null
      report.line(how.progress ? how.progress(fins) : `${target.name}: ${terminatingText(obj, fins)}${await detail()}`)
      if (await cdcBlockedByWebhook(t, label, target, obj, blocked)) continue
      const verdict = goneVerdict({
        unchangedForMs: Date.now() - unchangedSince,
        allDownForMs: downSince === null ? null : Date.now() - downSince,
        deleting: !!obj.metadata.deletionTimestamp,
        finalizers: fins,
        controllers,
        down,
        pastDeadline: Date.now() > t.deadline,
      })
      if (verdict.verdict === 'timeout')
        throw notGoneInTime(t, label, obj, Date.now() - unchangedSince, lastVersion !== firstVersion)
      if (verdict.verdict === 'stuck' && (await forceFinalizers(t, label, target, obj, verdict, how, report)))
        forced = true
      await nap(watches, 1000)
    }
  } finally {
    t.unwatch(w)
  }
}

/** What one wait saw of core-provider's webhook refusing a cdc (cdcBlockedByWebhook). */
interface WebhookBlock {
  since: number | null
  lookedAt: number
  webhook: { name: string; uid: string } | null
  nudged: boolean
}

/**
 * A Composition's cdc removes its finalizer with a write, which a Gen S core-provider's fail-closed webhook refuses
 * while that core-provider is down (the real engine: the Installer CR waited on its cdc's refused retries until the
 * deadline, changing at each). Down for STUCK_AFTER_MS: named (exit 7), or with --force (confirmed) our webhook
 * removed. Once this run removed it, the cdc is made to retry now (a real cdc may be waiting out its resync). Looked
 * at every 5 s. True when it acted (look again).
 */
async function cdcBlockedByWebhook(
  t: TeardownRun,
  label: string,
  target: GoneTarget,
  obj: KObj,
  blocked: WebhookBlock,
): Promise<boolean> {
  const composition = target.collection.startsWith(`/apis/${COMPOSITION_GROUP}/`)
  if (!composition || !obj.metadata.deletionTimestamp || !obj.metadata.finalizers?.includes(COMPOSITION_FINALIZER))
    return false
  // The shared Deployment watch answers "core-provider runs" for free; only when none is seen running are the
  // webhooks read (a GET each), at most every 5 s.
  const providers = t.inventory?.coreProviders ?? []
  const maybeDown = !providers.length || providers.every((n) => t.deploymentRunning(n, t.namespace) === false)
  if (!maybeDown) Object.assign(blocked, { since: null, webhook: null })
  else if (Date.now() - blocked.lookedAt > 5000) {
    blocked.lookedAt = Date.now()
    blocked.webhook = await ourWebhookRefusing(t)
    blocked.since = blocked.webhook ? (blocked.since ?? Date.now()) : null
  }
  if (blocked.webhook && blocked.since !== null && Date.now() - blocked.since > STUCK_AFTER_MS) {
    await removeRefusingWebhook(t, `let the cdc remove the finalizer of ${label}`, blocked.webhook.name)
    Object.assign(blocked, { since: null, webhook: null })
  }
  const removed = t.forced.some((f) => f.startsWith('MutatingWebhookConfiguration/'))
  if (!removed || blocked.nudged) return false
  blocked.nudged = true
  await t.api(`make the cdc of ${label} retry`, () =>
    nudgeComposition(t.cluster, obj, target.collection.split('/').pop()!).catch((err: unknown) => {
      if (!isNotFound(err)) throw err
      return false
    }),
  )
  return true
}

/**
 * Past the deadline and not stuck. Stuck needs STUCK_AFTER_MS without a change, seen by this run: a wait begun late
 * in a short --timeout saw too little to say so, which is not the same as having seen it change.
 */
function notGoneInTime(t: TeardownRun, label: string, obj: KObj, unchangedMs: number, changedWhileWatched: boolean) {
  const fins = obj.metadata.finalizers ?? []
  const stuckAfter = STUCK_AFTER_MS / 1000
  const seen = !obj.metadata.deletionTimestamp
    ? 'it is not being deleted'
    : unchangedMs > STUCK_AFTER_MS
      ? 'no finalizer holds it; Kubernetes has not removed it yet'
      : changedWhileWatched
        ? `it changed in the last ${stuckAfter}s; finalizers ${fins.join(', ') || 'none'}`
        : `unchanged for the ${Math.round(unchangedMs / 1000)}s it was watched, under the ${stuckAfter}s that make it stuck; finalizers ${fins.join(', ') || 'none'}`
  return t.timedOut(`timed out waiting for ${label} to be gone (${seen})`)
}

/** The extra detail (a hook Job's pod) costs a request: asked at most every 5 s, the last answer kept. */
function throttled(detail: (() => Promise<string>) | undefined): () => Promise<string> {
  let said = ''
  let saidAt = 0
  return async () => {
    if (detail && Date.now() - saidAt > 5000) [said, saidAt] = [await detail(), Date.now()]
    return said
  }
}

function controllerWatches(t: TeardownRun, controllers: FinalizerController[]): ObjectWatch[] {
  return controllers.filter((c) => c.deployment).map((c) => t.deploymentWatch(c.deployment!, c.namespace))
}

/** Without --force: the stuck object named (exit 7). With it (confirmed): the stuck finalizers removed. */
async function forceFinalizers(
  t: TeardownRun,
  label: string,
  target: GoneTarget,
  obj: KObj,
  stuck: { targets: FinalizerController[]; who: string; kept: string[] },
  how: GoneWait,
  report: StepReport,
): Promise<boolean> {
  const { targets, who, kept } = stuck
  if (targets.length === 0)
    throw new UserError(
      `${label} is stuck Terminating on Kubernetes' own finalizer ${kept.join(', ')}, which --force never removes`,
      ExitCode.Stuck,
      'find what holds it (a pod still using the claim, objects of a kind being removed) and let Kubernetes finish, then re-run',
    )
  if (!t.force) {
    throw new UserError(
      `${label} is stuck Terminating on finalizer ${who}`,
      ExitCode.Stuck,
      `start that controller again, or re-run with --force --yes to remove the finalizer (what may be left behind: ${how.orphans})`,
    )
  }
  if (!(await t.confirm(`remove finalizer ${who} of ${label}? What may be left behind: ${how.orphans}`))) {
    throw new UserError(
      `${label} is stuck Terminating on finalizer ${who}; its finalizer was kept`,
      ExitCode.Stuck,
      'start that controller again, then re-run',
    )
  }
  report.line(`--force: removing finalizers of ${label}: ${who}`)
  const keep = (obj.metadata.finalizers ?? []).filter((f) => !targets.some((x) => x.finalizer === f))
  const patch = [
    { op: 'test', path: '/metadata/resourceVersion', value: obj.metadata.resourceVersion },
    { op: 'replace', path: '/metadata/finalizers', value: keep },
  ]
  try {
    await compositionWrite(t, `remove the finalizers of ${label}`, () =>
      requestPath(t.cluster, 'PATCH', `${target.collection}/${target.name}`, patch, {
        contentType: 'application/json-patch+json',
      }),
    )
  } catch (err) {
    // It changed under us (its controller came back, say): look again.
    if (!(err instanceof UserError && /HTTP (409|422)/.test(err.message))) throw err
    return false
  }
  t.forced.push(
    `${label} (finalizers ${targets.map((x) => x.finalizer).join(', ')}; may be left behind: ${how.orphans})`,
  )
  return true
}

function terminatingText(obj: KObj, fins: string[]): string {
  const ready = conditionOf(obj, 'Ready')
  const failing = conditionOf(obj, 'Synced')?.status === 'False' ? conditionOf(obj, 'Synced')?.message : undefined
  return `Terminating (${ready?.reason ?? 'no status'}${ready?.message ? `: ${ready.message}` : ''}${failing ? `; ${failing}` : ''}; finalizers ${fins.join(', ') || 'none'})`
}
