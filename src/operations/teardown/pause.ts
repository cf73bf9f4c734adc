// The pause protocol: the Installer is paused (krateo.io/paused, a watched annotation its cdc observes at once)
// so Pass B cannot re-create what is drained; a pause this run set is taken back when it gives up before
// anything was drained.
import { installerReleasePending, mergePatchCustom, nudge, refOf } from '../../cluster/kube-write.js'
import { cdcDeploymentOf } from '../../platform/bundle.js'
import { type KObj } from '../../platform/kobj.js'
import { PAUSED_ANNOTATION, PAUSED_BY_ANNOTATION, conditionOf } from '../../platform/objects.js'
import { STAGE_TEXT } from '../../platform/component-state.js'
import { platformState } from '../../platform/state.js'
import type { StepReport } from '../../ui/progress.js'
import { PlatformWatch } from '../follow.js'
import type { TeardownRun } from './run.js'
import { compositionWrite } from './webhook-guard.js'

/** Pauses the Installer and waits until its cdc reports the pause (or is not running, so cannot act). */
export async function pauseInstaller(
  t: TeardownRun,
  installer: KObj,
  installerCD: KObj | undefined,
  report: StepReport,
): Promise<string> {
  const ref = refOf(installer, 'installers')
  if (installer.metadata.annotations?.[PAUSED_ANNOTATION] !== 'true') {
    await compositionWrite(t, 'pause the Installer CR', () =>
      mergePatchCustom(t.cluster, ref, {
        metadata: {
          annotations: {
            [PAUSED_ANNOTATION]: 'true',
            [PAUSED_BY_ANNOTATION]: `krateo-installer ${t.command} at ${new Date().toISOString()}`,
          },
        },
      }),
    )
    t.pausedByUs = true
  }
  const cdc = cdcDeploymentOf(installerCD)
  const w = t.watchObject(`/apis/${ref.group}/${ref.version}/namespaces/${ref.namespace}/${ref.plural}`, ref.name)
  const watches = [w, ...(cdc ? [t.deploymentWatch(cdc, t.namespace)] : [])]
  try {
    return await t.waitFor(
      'the installer cdc to report the pause',
      async () => {
        const fresh = w.current
        if (fresh === undefined) return null
        if (fresh === null || conditionOf(fresh, 'Synced')?.reason === 'ReconcilePaused')
          return 'paused (Synced=False ReconcilePaused)'
        // A cdc that does not run cannot re-create anything either: the pause holds once it starts again.
        if (cdc && t.deploymentRunning(cdc, t.namespace) === false)
          return `paused (its cdc ${cdc} is not running, so nothing can re-create what is drained)`
        return null
      },
      report,
      () => 'waiting for the installer cdc to observe the pause',
      watches,
    )
  } finally {
    t.unwatch(w)
  }
}

/**
 * Before the pause: lets the Installer bring back what a version move pruned while its dependents still
 * exist (they need it running to finalize their objects), nudging its cdc through the watched annotation.
 */
export async function letInstallerReCreate(
  t: TeardownRun,
  names: string[],
  report: StepReport,
  reCreated: (name: string, composition: KObj) => void,
): Promise<string> {
  const pw = new PlatformWatch(t.cluster, t.namespace).start()
  let lastNudge = 0
  let why = ''
  try {
    return await t.waitFor(
      `the Installer to re-create ${names.join(', ')}`,
      async () => {
        if (!pw.primed()) return null
        const snapshot = pw.snapshot()
        const left = platformState(snapshot).components.filter((c) => names.includes(c.name) && c.stage !== 'ready')
        if (!left.length) {
          for (const name of names) reCreated(name, snapshot.compositions.get(name)!)
          return `${names.join(', ')} running again`
        }
        why = left.map((c) => `${c.name}: ${STAGE_TEXT[c.stage]}${c.detail ? ` (${c.detail})` : ''}`).join('; ')
        const installer = pw.installerCR()
        if (
          installer &&
          left.some((c) => c.awaitsRender) &&
          Date.now() - lastNudge > 10_000 &&
          !(await installerReleasePending(t.cluster, installer))
        ) {
          lastNudge = Date.now()
          await nudge(t.cluster, installer)
        }
        return null
      },
      report,
      () =>
        `the Installer is re-creating what its dependents need to finalize their objects: ${why || names.join(', ')}`,
      [],
      1000,
    )
  } finally {
    pw.stop()
  }
}

/** Takes back a pause this run set (and the annotations named, set with it), when the command gives up before anything was drained. */
export async function unpauseIfOurs(
  t: TeardownRun,
  installer: KObj | null,
  alsoRemove: string[] = [],
): Promise<boolean> {
  if (!installer || !t.pausedByUs || t.drained > 0) return false
  const annotations = Object.fromEntries([PAUSED_ANNOTATION, PAUSED_BY_ANNOTATION, ...alsoRemove].map((a) => [a, null]))
  const done = await mergePatchCustom(t.cluster, refOf(installer, 'installers'), { metadata: { annotations } }).then(
    () => true,
    () => false,
  )
  if (done) t.pausedByUs = false
  return done
}
