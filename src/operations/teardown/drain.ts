// The drain (stage 1): one component's Composition deleted and waited for, with every object its release
// listed, so the providers that finalize them are still alive while they go.
import { getPath, isNotFound } from '../../cluster/cluster.js'
import type { Component } from '../../platform/components.js'
import { FINALIZES_REST_DEFINITIONS } from '../../platform/drain.js'
import { type ManagedRef, restDefinitionsOf } from '../../platform/ownership.js'
import type { KObj } from '../../platform/kobj.js'
import type { StepReport } from '../../ui/progress.js'
import { managedPath } from '../inventory-reads.js'
import type { TeardownRun } from './run.js'
import { targetOf, waitGone } from './wait-gone.js'

/** Deletes one component's Composition and waits until it and every object it managed are gone. */
export async function drainComposition(
  t: TeardownRun,
  c: Component,
  obj: KObj,
  plural: string,
  report: StepReport,
): Promise<void> {
  if (c.name === FINALIZES_REST_DEFINITIONS) await waitOurRestDefinitions(t, c, report)
  // Past the deadline nothing new is deleted: the next run starts it with time to wait for it.
  if (!obj.metadata.deletionTimestamp && Date.now() > t.deadline)
    throw t.timedOut(`timed out before draining ${c.name}`)
  const managed = (obj.status?.managed as ManagedRef[] | undefined) ?? []
  const [group, version] = obj.apiVersion!.split('/') as [string, string]
  const ref = { group, version, namespace: t.namespace, plural, name: c.name }
  t.drained++
  if (!obj.metadata.deletionTimestamp)
    await t.api(`delete ${c.name}`, () =>
      t.custom.deleteNamespacedCustomObject(ref).catch((err) => {
        if (!isNotFound(err)) throw err
      }),
    )
  report.line(`${c.name}: deleting`)
  const cd = t.inventory?.definitions.find((d) => d.metadata.name === c.name)
  const orphans = managed.map((m) => `${m.resource}/${m.name}`).join(', ') || 'none recorded'
  const how = { cd, orphans: `the objects of its release: ${orphans}` }
  if ((await waitGone(t, `${c.kind}/${c.name}`, targetOf(ref), report, how)) === 'forced') {
    report.line(`${c.name}: gone (forced: the objects of its release may be left behind: ${orphans})`)
    return
  }
  // The release's own objects (the portal's pages, a provider's RestDefinitions) are finalized by
  // controllers that are still alive now; wait for them before their providers go.
  await waitReleased(t, c, managed, report)
  report.line(`${c.name}: gone`)
}

/** Only the RestDefinitions our own releases created: a user's keep their provider busy, not us. */
async function waitOurRestDefinitions(t: TeardownRun, c: Component, report: StepReport): Promise<void> {
  const ours = [
    ...restDefinitionsOf(t.inventory ? [...t.inventory.compositions.values()] : []),
    ...[...(t.inventory?.finishing.values() ?? [])].flat().filter((m) => m.resource === 'restdefinitions'),
  ]
  for (const m of ours)
    await waitReleasedObject(
      t,
      c,
      m,
      report,
      `${c.name}: waiting for RestDefinition ${m.name} to be gone while ${c.name} can still finalize it`,
    )
}

/**
 * A component whose Composition an earlier run deleted before it was stopped: waits for what its release
 * left finalizing, so the providers that finalize it are not drained first.
 */
export async function finishRelease(t: TeardownRun, c: Component, left: ManagedRef[], report: StepReport) {
  report.line(`${c.name}: Composition already gone; ${left.length} of its release's objects still finalizing`)
  await waitReleased(t, c, left, report)
  report.line(`${c.name}: gone`)
}

/** What a release's helm uninstall deleted, finalized by controllers still alive now: waited for before their providers go. */
async function waitReleased(t: TeardownRun, c: Component, objects: ManagedRef[], report: StepReport): Promise<void> {
  for (const m of objects)
    await waitReleasedObject(
      t,
      c,
      m,
      report,
      `${c.name}: waiting for ${m.resource}/${m.name} (released by helm uninstall) to be finalized`,
    )
}

/**
 * One object a platform release listed (status.managed of our Composition: ours by that record). Stuck on a
 * finalizer at the deadline it is named (exit 7); with --force, that finalizer is removed like a Composition's.
 */
async function waitReleasedObject(
  t: TeardownRun,
  c: Component,
  m: ManagedRef,
  report: StepReport,
  waiting: string,
): Promise<void> {
  const collection = managedPath(m).replace(/\/[^/]+$/, '')
  // Most objects are gone by the time we look: one GET settles those; a watch follows the rest.
  const now = await t.api(`read ${m.resource}/${m.name}`, () => getPath(t.cluster, `${collection}/${m.name}`))
  if (!now) return
  // helm uninstall leaves what its chart marks to keep: waiting for it would only run into the deadline.
  if (now.metadata.annotations?.['helm.sh/resource-policy'] === 'keep' && !now.metadata.deletionTimestamp) {
    report.line(`${m.resource}/${m.name} is kept by its chart (helm.sh/resource-policy: keep): not waited for`)
    return
  }
  const label = `${m.resource}/${m.name} of ${c.name}`
  const outcome = await waitGone(t, label, { collection, name: m.name }, report, {
    orphans: `whatever the controller of its finalizer would have cleaned up for ${m.resource}/${m.name}`,
    progress: (fins) => `${waiting} (finalizers ${fins.join(', ') || 'none'})`,
  })
  if (outcome === 'forced') report.line(`${label}: gone (forced)`)
}
