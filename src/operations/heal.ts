// Where the engine is known to get stuck while the CLI follows it, the CLI heals through the events its
// controllers watch, and only on the platform's own objects: a lost create result (a stale pending annotation)
// and a kind chart-inspector missed (its REST mapper read discovery too early).
import { type Cluster, statusOf } from '../cluster/cluster.js'
import { mergePatchCustom, nudgeComposition, refOf, refreshDiscovery } from '../cluster/kube-write.js'
import type { KObj } from '../platform/kobj.js'
import type { Observed } from '../platform/objects.js'
import { chartInspectorMisses, crdServesKind, healableStuckCreates } from '../platform/ownership.js'
import type { StepReport } from '../ui/progress.js'
import type { PlatformWatch } from './follow.js'

/**
 * Strips a stale external-create-pending annotation only where the controller itself reports it is blocked, and
 * only from the platform's objects; the patch holds on the resourceVersion that was judged.
 */
export async function healStuck(cluster: Cluster, pw: PlatformWatch, report: StepReport): Promise<boolean> {
  let healed = 0
  for (const { obj, plural } of healableStuckCreates(pw.snapshot())) {
    const patched = await mergePatchCustom(cluster, refOf(obj, plural), {
      metadata: {
        resourceVersion: obj.metadata.resourceVersion,
        annotations: { 'krateo.io/external-create-pending': null },
      },
    }).catch((err: unknown) => {
      // Changed since it was judged (its controller moved on): judged again at the next look.
      if (statusOf(err) === 409) return null
      throw err
    })
    if (!patched) continue
    healed++
    report.line(
      `healed ${obj.kind ?? plural}/${obj.metadata.name}: its controller had lost a create result ("cannot determine creation result"); removed the stale krateo.io/external-create-pending annotation`,
    )
  }
  return healed > 0
}

/** A cdc retries a failed create a few times and then waits for its resync: a refresh that did not help is tried again this much later. */
export const DISCOVERY_REFRESH_GAP_MS = 30_000

/**
 * Where a component's cdc failed because chart-inspector did not know a kind of its chart whose CRD is established
 * (chart-inspector 0.2.0 missed it: it reads discovery again only on a CRD event), makes it read discovery again
 * through that event (a CRD of ours added and deleted) and the cdc retry now (a watched annotation), instead of
 * leaving the component failed until some other CRD changes. A kind whose CRD is really missing is left to the
 * component's problem line. True when it looked (a miss was reported), so the caller spaces its looks: each
 * lists every CRD.
 */
export async function refreshMissedKinds(cluster: Cluster, o: Observed, report: StepReport): Promise<boolean> {
  const misses = chartInspectorMisses(o)
  if (!misses.length) return false
  const crds = (await cluster.crds.listCustomResourceDefinition()).items as unknown as KObj[]
  const served = misses.filter((m) => crds.some((crd) => crdServesKind(crd, m.group, m.kind, m.version)))
  if (!served.length) return true
  try {
    await refreshDiscovery(cluster)
  } catch (err) {
    // Without the right to create a CRD the component stays as its problem line says; the rest goes on.
    if (statusOf(err) !== 403) throw err
    report.line(`chart-inspector had not seen ${served[0]!.kind}; refreshing it needs the right to create CRDs`)
    return true
  }
  const nudged: string[] = []
  for (const m of served) if (await nudgeComposition(cluster, m.obj, m.plural)) nudged.push(m.obj.metadata.name)
  const kinds = [...new Set(served.map((m) => `${m.kind} (${m.group ? `${m.group}/` : ''}${m.version})`))]
  report.line(
    `chart-inspector had not seen ${kinds.join(', ')}, served by an established CRD: made it read discovery again (a CRD of ours added and deleted, the event it watches)${nudged.length ? ` and ${nudged.join(', ')} retry now` : ''}`,
  )
  return true
}
