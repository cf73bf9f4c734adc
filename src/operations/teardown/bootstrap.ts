// Stage 2, the bootstrap teardown: the Installer CR, then the platform's CompositionDefinitions (never another
// one) and the CRDs they generated, all while core-provider lives; then helm uninstall of the bootstrap release.
import { isNotFound } from '../../cluster/cluster.js'
import { type Helm, exactReleaseFilter } from '../../cluster/helm.js'
import { mergePatchCustom, refOf } from '../../cluster/kube-write.js'
import { CD_GROUP, CD_VERSION } from '../../cluster/observe.js'
import { INSTALLER_NAME, generatedCrdOf } from '../../platform/ownership.js'
import { type KObj } from '../../platform/kobj.js'
import { PAUSED_ANNOTATION, PAUSED_BY_ANNOTATION } from '../../platform/objects.js'
import type { StepReport } from '../../ui/progress.js'
import { waitGeneratedCrds } from './generated-crds.js'
import type { TeardownRun } from './run.js'
import { removeStandIns, standInForLostKinds } from './stand-in.js'
import { targetOf, waitGone } from './wait-gone.js'
import { compositionWrite } from './webhook-guard.js'

export async function deleteInstallerAndDefinitions(
  t: TeardownRun,
  installer: KObj | null,
  helm: Helm,
  report: StepReport,
): Promise<string> {
  if (installer) await deleteInstaller(t, installer, helm, report)
  await removeStandIns(t)
  const names = await deleteDefinitions(t, report)
  await waitDefinitionsGone(t, names, report)
  await waitGeneratedCrds(t, report)
  const foreign = t.inventory?.foreignDefinitions.length
  return `${names.length} CompositionDefinitions and ${t.record.crds.length} generated CRDs removed${foreign ? ` (${foreign} not the platform's, kept)` : ''}`
}

/** The Installer CR: deleted, unpaused (a paused Composition being deleted stays Terminating), waited for. */
async function deleteInstaller(t: TeardownRun, installer: KObj, helm: Helm, report: StepReport): Promise<void> {
  const ref = refOf(installer, 'installers')
  await standInForLostKinds(t, installer, helm, report)
  await t.api('delete the Installer CR', () =>
    t.custom.deleteNamespacedCustomObject(ref).catch((err) => {
      if (!isNotFound(err)) throw err
    }),
  )
  // That update of a deleting object is handled at once.
  await compositionWrite(t, 'unpause the Installer CR', () =>
    mergePatchCustom(t.cluster, ref, {
      metadata: { annotations: { [PAUSED_ANNOTATION]: null, [PAUSED_BY_ANNOTATION]: null } },
    }).catch((err) => {
      if (!isNotFound(err)) throw err
    }),
  )
  const installerCD = t.inventory?.definitions.find((d) => d.metadata.name === INSTALLER_NAME)
  const how = {
    cd: installerCD,
    orphans: 'its composition release and the admin-password Secret',
    detail: () => teardownHookState(t),
  }
  if ((await waitGone(t, 'the Installer CR', targetOf(ref), report, how)) === 'forced')
    report.line('the Installer CR is gone (forced: its release record may be left behind)')
}

const cdRef = (t: TeardownRun, name: string) => ({
  group: CD_GROUP,
  version: CD_VERSION,
  namespace: t.namespace,
  plural: 'compositiondefinitions',
  name,
})

/** Deletes the recorded definitions, each only as the object recorded or proved ours now; returns those deleted. */
async function deleteDefinitions(t: TeardownRun, report: StepReport): Promise<string[]> {
  const deleted: string[] = []
  for (const name of new Set(t.record.definitions)) {
    const live = (await t.api(`read CompositionDefinition ${name}`, () =>
      t.custom.getNamespacedCustomObject(cdRef(t, name)).catch((err) => {
        if (isNotFound(err)) return null
        throw err
      }),
    )) as KObj | null
    // The recorded definition, or one the inventory proved ours: a user's definition made since under the
    // same name is not deleted.
    const proved = !!live && !!t.inventory?.definitions.some((d) => d.metadata.uid === live.metadata.uid)
    const gone = await t.deleteRecorded(
      `CompositionDefinition ${name}`,
      live,
      t.recordedUid('CompositionDefinition', name),
      proved,
      (uid) => t.custom.deleteNamespacedCustomObject({ ...cdRef(t, name), body: { preconditions: { uid } } }),
      report,
    )
    if (gone) deleted.push(name)
  }
  return deleted
}

/** Each definition waited for on its own, so one whose core-provider is down can be named (and forced). */
async function waitDefinitionsGone(t: TeardownRun, names: string[], report: StepReport): Promise<void> {
  await Promise.all(
    names.map(async (name) => {
      const cd = t.inventory?.definitions.find((d) => d.metadata.name === name)
      const how = { cd, orphans: 'its CRD and cdc bundle (removed next)' }
      if ((await waitGone(t, `CompositionDefinition/${name}`, targetOf(cdRef(t, name)), report, how)) !== 'forced')
        return
      // core-provider would have removed its CRD: do it, it is ours by the record.
      const crd = cd ? generatedCrdOf(cd) : null
      if (crd)
        await t.api(`delete CRD ${crd}`, () =>
          t.crdApi.deleteCustomResourceDefinition({ name: crd }).catch((err) => {
            if (!isNotFound(err)) throw err
          }),
        )
    }),
  )
}

/** The composition release's pre-delete Job, when it is what the Installer's removal waits on. */
async function teardownHookState(t: TeardownRun): Promise<string> {
  const pods = await t.core
    .listNamespacedPod({ namespace: t.namespace, labelSelector: 'job-name=installer-ordered-teardown' })
    .catch(() => null)
  const pod = pods?.items[0]
  if (!pod) return ''
  const waiting = pod.status?.containerStatuses?.find((s) => s.state?.waiting)?.state?.waiting
  return `; teardown hook Job installer-ordered-teardown: pod ${pod.metadata?.name} ${waiting ? `${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}` : (pod.status?.phase ?? '')}`
}

/** helm uninstall of the bootstrap release, whatever its name; hooks skipped (the steps before did their work). */
export async function uninstallRelease(t: TeardownRun, helm: Helm): Promise<string> {
  const release = t.record.release
  if (!release) return 'no bootstrap release found'
  const out = await helm.run([
    'list',
    '-n',
    t.namespace,
    '--filter',
    exactReleaseFilter(release),
    ...helm.allStatuses(),
    '-q',
  ])
  if (!out.trim()) return `${release} is not installed`
  await helm.run(['uninstall', release, '-n', t.namespace, '--no-hooks', '--wait'])
  return `${release} uninstalled (hooks skipped)`
}
