// core-provider's move of a Composition to its definition's new version, completed when it got lost.
import { COMPOSITION_VERSION_LABEL } from '../../platform/upgrade-plan.js'
import { type Cluster } from '../../cluster/cluster.js'
import { COMPOSITION_GROUP } from '../../cluster/observe.js'
import { type KObj } from '../../platform/kobj.js'
import type { StepReport } from '../../ui/progress.js'
import { mergePatchCustom } from '../../cluster/kube-write.js'

/** How long core-provider gets to move that label before this CLI completes the move. */
const RELABEL_GRACE_MS = 20_000

/**
 * Completes core-provider's move of a Composition to its definition's new version. core-provider 0.26.1 moves
 * the version label once, with an update that fails on any concurrent write (the old cdc's status, a nudge) and
 * is never retried: the Composition then belongs to no cdc, and the upgrade waits for ever (seen on the real
 * engine). Once the new version is served and the label has stayed old past the grace, the label is moved here,
 * on that object only (resourceVersion precondition), and said.
 */
export function relabeller(cluster: Cluster, report: StepReport) {
  const staleSince = new Map<string, number>()
  return async (obj: KObj | null | undefined, plural: string, version: string): Promise<void> => {
    if (!obj?.metadata.uid || obj.metadata.labels?.[COMPOSITION_VERSION_LABEL] === version) return
    const since = staleSince.get(obj.metadata.uid) ?? Date.now()
    staleSince.set(obj.metadata.uid, since)
    if (Date.now() - since < RELABEL_GRACE_MS) return
    const ref = {
      group: COMPOSITION_GROUP,
      version,
      namespace: obj.metadata.namespace!,
      plural,
      name: obj.metadata.name,
    }
    try {
      await mergePatchCustom(cluster, ref, {
        metadata: { resourceVersion: obj.metadata.resourceVersion, labels: { [COMPOSITION_VERSION_LABEL]: version } },
      })
      staleSince.delete(obj.metadata.uid)
      report.line(
        `${obj.kind ?? plural} ${obj.metadata.name}: core-provider did not move it to ${version} (its one update lost a write conflict); moved its ${COMPOSITION_VERSION_LABEL} label so the ${version} cdc takes it`,
      )
    } catch {
      // Changed meanwhile (core-provider moved it after all, say): looked at again at the next tick.
    }
  }
}
