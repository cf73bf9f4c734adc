// The CRDs core-provider generated for the platform's CompositionDefinitions: it removes them once their
// definitions go. Waited for; when core-provider is down they would stay for good, so they are named, and with
// --force (confirmed) removed here, each only as the CRD that was judged the platform's.
import { isNotFound, statusOf } from '../../cluster/cluster.js'
import { CD_GROUP, CD_VERSION } from '../../cluster/observe.js'
import type { ObjectWatch } from '../../cluster/watch.js'
import { STUCK_AFTER_MS } from '../../platform/drain.js'
import { ExitCode, UserError } from '../../platform/errors.js'
import { COMPOSITION_GROUP, generatedCrdOf } from '../../platform/ownership.js'
import type { KObj } from '../../platform/kobj.js'
import type { StepReport } from '../../ui/progress.js'
import { CRD_COLLECTION, type TeardownRun } from './run.js'

/** Waits until every recorded generated CRD is gone; names (or with --force removes) those core-provider cannot. */
export async function waitGeneratedCrds(t: TeardownRun, report: StepReport): Promise<void> {
  const crdWatches = t.record.crds.map((name) => t.watchObject(CRD_COLLECTION, name))
  const coreProviders = t.inventory?.coreProviders ?? []
  const cpWatches = coreProviders.map((d) => t.deploymentWatch(d, t.namespace))
  // One line per change; a watch that has not answered yet is not yet a CRD left.
  let left: string[] = []
  let downSince: number | null = null
  let removing = false
  const listed = () => `${left.length} generated CRDs (${left.slice(0, 3).join(', ')}${left.length > 3 ? ', ...' : ''})`
  const cpDown = () =>
    coreProviders.length > 0 && coreProviders.every((d) => t.deploymentRunning(d, t.namespace) === false)
  const probe = async () => {
    left = crdWatches.filter((w) => w.current).map((w) => w.name)
    const unknown = crdWatches.filter((w) => w.current === undefined).length
    if (!left.length && !unknown) return true
    // The controller that removes them is down: they stay for good. Name it; --force removes them itself.
    downSince = left.length && cpDown() ? (downSince ?? Date.now()) : null
    // One removal at a time: checks run on every watch event, and one may come while a removal (or its
    // question) is under way.
    if (downSince !== null && Date.now() - downSince > STUCK_AFTER_MS && !removing) {
      removing = true
      try {
        await removeGeneratedCrds(
          t,
          crdWatches.filter((w) => w.current),
          coreProviders,
          report,
        )
      } finally {
        removing = false
      }
    }
    return null
  }
  const why = () =>
    !left.length
      ? 'looking at the generated CRDs'
      : cpDown()
        ? `${listed()} left; core-provider (Deployment ${coreProviders.join(', ')}), which removes them, is not running`
        : `core-provider is removing ${listed()}`
  try {
    await t.waitFor('the generated CRDs of the platform to go', probe, report, why, [...crdWatches, ...cpWatches])
  } finally {
    for (const w of crdWatches) t.unwatch(w)
  }
}

/**
 * The platform's generated CRDs, left because core-provider is not running. Without --force: named, exit 7.
 * With --force (confirmed): removed, each only if it is still a generated composition CRD (group
 * composition.krateo.io) that no CompositionDefinition of this namespace still reports, guarded by its uid.
 */
async function removeGeneratedCrds(t: TeardownRun, left: ObjectWatch[], coreProviders: string[], report: StepReport) {
  const names = left.map((w) => w.name)
  const who = `core-provider (Deployment ${coreProviders.join(', ')}), which is not running`
  if (!t.force) {
    throw new UserError(
      `${names.length} generated CRDs of the platform are left: ${names.join(', ')}; they are removed by ${who}`,
      ExitCode.Stuck,
      'start core-provider again, or re-run with --force --yes to remove these CRDs (every object of their kinds goes with them)',
    )
  }
  const ours = await stillOurs(t, left)
  for (const w of left.filter((x) => !ours.includes(x)))
    report.line(`CRD ${w.name}: kept (not a generated composition CRD, or a definition still reports it)`)
  if (!ours.length) return
  // The uids as judged here: a watch may see a CRD go (current null) during the question or the loop.
  const targets = ours.map((w) => ({ name: w.name, uid: w.current!.metadata.uid }))
  if (
    !(await t.confirm(
      `remove the generated CRDs ${ours.map((w) => w.name).join(', ')} (core-provider, which would, is not running)?`,
    ))
  ) {
    throw new UserError(
      `${names.length} generated CRDs of the platform are left (${names.join(', ')}); they were kept`,
      ExitCode.Stuck,
      'start core-provider again, then re-run',
    )
  }
  for (const target of targets) {
    report.line(`--force: removing CRD ${target.name} (core-provider is not running)`)
    if (await removeCrd(t, target, report))
      t.forced.push(`CustomResourceDefinition/${target.name} (core-provider was not running)`)
  }
}

/** The CRDs left that are still generated composition CRDs no definition reports, and the ones recorded. */
async function stillOurs(t: TeardownRun, left: ObjectWatch[]): Promise<ObjectWatch[]> {
  const cds = (await t.api('list CompositionDefinitions', () =>
    t.custom.listNamespacedCustomObject({
      group: CD_GROUP,
      version: CD_VERSION,
      namespace: t.namespace,
      plural: 'compositiondefinitions',
    }),
  )) as { items: KObj[] }
  const stillReported = new Set(cds.items.map((cd) => generatedCrdOf(cd)).filter((n): n is string => !!n))
  return left.filter((w) => {
    if (!w.current) return false
    if ((w.current.spec as { group?: string } | undefined)?.group !== COMPOSITION_GROUP) return false
    if (stillReported.has(w.name)) return false
    // The CRD that was recorded, not another one made since under its name.
    const recorded = t.recordedUid('CustomResourceDefinition', w.name)
    return !recorded || recorded === w.current.metadata.uid
  })
}

async function removeCrd(t: TeardownRun, target: { name: string; uid?: string }, report: StepReport) {
  return t.api(`delete CRD ${target.name}`, () =>
    t.crdApi
      .deleteCustomResourceDefinition({ name: target.name, body: { preconditions: { uid: target.uid } } })
      .then(() => true)
      .catch((err) => {
        // Gone already, or another CRD of that name now (the uid precondition): neither is ours to remove.
        if (isNotFound(err)) return false
        if (statusOf(err) === 409) {
          report.line(`CRD ${target.name}: kept (replaced since it was judged the platform's)`)
          return false
        }
        throw err
      }),
  )
}
