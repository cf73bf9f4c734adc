// upgrade's steps: moving a running platform to another installer version, or switching its features, without
// losing runtime edits (contract section 1: components-patch.json, Pass A/B; section 2: version bump).
//
// Why not just re-apply the chart: Pass B emits a Composition only once its CRD serves the pinned version,
// so when a component's version changes in the same render that bumps its CompositionDefinition, the
// installer's helm upgrade prunes that Composition (its workloads go) and re-creates it a resync later.
// Here the Installer is paused, definitions move first (dependencies first, each followed until its
// release runs at the new version: move-definitions.ts), and only then does the Installer CR get the new
// component list.
import { apiCall } from '../../cluster/cluster.js'
import { releaseStatus } from '../../cluster/helm.js'
import { getCustomServed, getCustomWhenServed, mergePatchCustom, nudge } from '../../cluster/kube-write.js'
import { COMPOSITION_GROUP } from '../../cluster/observe.js'
import { type InstallerSpec, dashed, parseComponents } from '../../platform/components.js'
import { ExitCode, UserError } from '../../platform/errors.js'
import {
  PAUSED_ANNOTATION,
  type Observed,
  UPGRADE_ANNOTATION,
  UPGRADE_FROM_ANNOTATION,
} from '../../platform/objects.js'
import { COMPOSITION_VERSION_LABEL, needsPause, removalWaves, stagedLayers } from '../../platform/upgrade-plan.js'
import type { Step } from '../../ui/progress.js'
import { followStep, waitUntil } from '../follow-ready.js'
import { helmBootstrap } from '../install/bootstrap.js'
import { installerDefinitionSteps } from '../install/installer-definition.js'
import { drainRemoved, moveDefinitionsStep } from './move-definitions.js'
import type { UpgradeRun } from './plan.js'
import { relabeller } from './relabel.js'

export function upgradeSteps(u: UpgradeRun): Step[] {
  const { plan, opts } = u
  const staged = stagedLayers(plan)
  return [
    // Paused first: the bootstrap release's upgrade moves the chart's grants to the new version's cdc account
    // (installers-lbip-services), so the old cdc must not render in between.
    ...(needsPause(plan) ? [pauseStep(u)] : []),
    helmStep(u),
    ...(plan.diff.removed.length ? [drainStep(u)] : []),
    ...(staged.length ? [moveDefinitionsStep(u, staged)] : []),
    ...installerDefinitionSteps(u.cluster, plan.rendered, opts.namespace, u.run),
    ...(plan.installer.metadata.labels?.[COMPOSITION_VERSION_LABEL] !== dashed(plan.to) ? [installerMoveStep(u)] : []),
    mergeStep(u),
    ...(opts.wait ? [upgradeFollowStep(u)] : []),
  ]
}

const installerRef = (u: UpgradeRun, version: string) => ({
  group: COMPOSITION_GROUP,
  version,
  namespace: u.opts.namespace,
  plural: 'installers',
  name: 'installer',
})

// At the version the plan read it, or the one served now: on Gen N the installer's render may have moved it since.
const readInstaller = (u: UpgradeRun) =>
  apiCall(u.cluster, 'read the Installer CR', () =>
    getCustomServed(u.cluster, installerRef(u, u.plan.installer.apiVersion!.split('/')[1]!)),
  )

const installerGone = (u: UpgradeRun) =>
  new UserError(
    `the Installer CR ${u.opts.namespace}/installer disappeared`,
    ExitCode.NotReady,
    'see krateo-installer status',
  )

function pauseStep(u: UpgradeRun): Step {
  return {
    title: 'Pause the Installer CR so nothing renders half-upgraded',
    run: async (r) => {
      const installer = await readInstaller(u)
      if (!installer) throw installerGone(u)
      await apiCall(u.cluster, 'mark the Installer CR', () =>
        mergePatchCustom(u.cluster, installerRef(u, installer.apiVersion!.split('/')[1]!), {
          metadata: {
            annotations: { [UPGRADE_ANNOTATION]: u.plan.to, [UPGRADE_FROM_ANNOTATION]: u.plan.from ?? null },
          },
        }),
      )
      return await u.teardown.pauseInstaller(installer, u.plan.observed.cds.get('installer'), r)
    },
  }
}

function helmStep(u: UpgradeRun): Step {
  const { helm, opts, plan } = u
  return {
    title: `Upgrade the bootstrap release "${plan.release}" to ${plan.to} (helm, hooks skipped)`,
    run: async (r) => {
      const current = await releaseStatus(helm, opts.namespace, plan.release)
      const newValues = opts.values.files.length + opts.values.sets.length > 0
      if (current?.status === 'deployed' && current.version === plan.to && !newValues)
        return `already at ${plan.to} (revision ${current.revision})`
      try {
        const bootstrap = { ...opts, source: plan.source, values: plan.values }
        await helmBootstrap(helm, bootstrap, plan.release, current, u.run.deadline, r)
      } catch (err) {
        throw await givePauseBack(u, err, current)
      }
      return `revision ${(await releaseStatus(helm, opts.namespace, plan.release))?.revision ?? '?'}`
    },
  }
}

/**
 * A failed helm run that left the release where it was (a chart that cannot be pulled, a release another
 * helm holds) changed nothing but our pause: that goes too, so the platform runs on as before. A failed
 * run that wrote a revision keeps the pause (its cdc account's grants may already have moved); re-running resumes.
 */
async function givePauseBack(u: UpgradeRun, err: unknown, before: { revision: number } | null): Promise<unknown> {
  if (!(err instanceof UserError)) return err
  const after = await releaseStatus(u.helm, u.opts.namespace, u.plan.release).catch(() => undefined)
  if (after === undefined || after?.revision !== before?.revision) return err
  if (
    !(await u.teardown.unpauseIfOurs(await readInstaller(u).catch(() => null), [
      UPGRADE_ANNOTATION,
      UPGRADE_FROM_ANNOTATION,
    ]))
  )
    return err
  return new UserError(
    err.message,
    err.exitCode,
    `${err.hint ? `${err.hint}; ` : ''}nothing was changed (the release is still at revision ${after?.revision ?? 'none'}, the Installer is unpaused)`,
  )
}

function drainStep(u: UpgradeRun): Step {
  const removed = u.plan.diff.removed
  return {
    title: `Drain removed components, leaves first (${removed.map((c) => c.name).join(', ')})`,
    run: async (r) => {
      for (const wave of removalWaves(removed))
        await Promise.all(
          wave.map((name) =>
            drainRemoved(
              u,
              removed.find((c) => c.name === name)!,
              r,
            ),
          ),
        )
      // Their CompositionDefinitions (and so their CRDs) stay until the installer's release no longer lists
      // them: helm cannot upgrade a release whose previous manifest holds a kind without a CRD.
      return `${removed.length} drained; their definitions go with the installer's next render`
    },
  }
}

function installerMoveStep(u: UpgradeRun): Step {
  const watch = u.run.platformWatch
  const to = dashed(u.plan.to)
  return {
    title: `Wait for core-provider to move the Installer CR to ${to}`,
    run: async (r) => {
      const relabel = relabeller(u.cluster, r)
      await waitUntil(
        watch(),
        u.run.interrupt,
        u.run.deadline,
        (o) => o.installer?.metadata.labels?.[COMPOSITION_VERSION_LABEL] === to,
        (o) =>
          `the Installer CR is at ${o.installer?.metadata.labels?.[COMPOSITION_VERSION_LABEL] ?? 'no version'}; core-provider moves it to ${to}`,
        r,
        () => relabel(watch().snapshot().installer, 'installers', to),
      )
      return `at ${to}`
    },
  }
}

function mergeStep(u: UpgradeRun): Step {
  const { cluster, plan } = u
  const features = Object.entries(plan.features.patch)
  return {
    title: 'Merge the new component list into the Installer CR (spec.features and other runtime edits kept)',
    run: async () => {
      const ref = installerRef(u, dashed(plan.to))
      const before = await apiCall(cluster, 'read the Installer CR', () => getCustomWhenServed(cluster, ref))
      if (!before) throw installerGone(u)
      const ours = !!before.metadata.annotations?.[UPGRADE_ANNOTATION]
      const body = {
        ...(ours
          ? {
              metadata: {
                annotations: { [PAUSED_ANNOTATION]: null, [UPGRADE_ANNOTATION]: null, [UPGRADE_FROM_ANNOTATION]: null },
              },
            }
          : {}),
        spec: {
          ...plan.rendered.selfCR.componentsPatch.spec,
          ...(features.length ? { features: plan.features.patch } : {}),
        },
      }
      const after = await apiCall(cluster, 'patch the Installer CR', () => mergePatchCustom(cluster, ref, body))
      const said = [
        `components and componentValues${features.length ? `, features ${features.map(([k, v]) => `${k}=${v}`).join(', ')}` : ''}`,
      ]
      if (ours) said.push('unpaused')
      // A spec change is handled at once, and so is the unpause (krateo.io/paused is a watched annotation);
      // with neither, a nudge of that same annotation makes the cdc observe now.
      if (after.metadata.generation === before.metadata.generation && !ours) {
        await apiCall(cluster, "nudge the installer's cdc", () => nudge(cluster, after))
        said.push("installer's cdc nudged to observe it now")
      }
      return said.join('; ')
    },
  }
}

function upgradeFollowStep(u: UpgradeRun): Step {
  const { plan } = u
  const want = JSON.stringify(plan.components.map((c) => [c.name, c.version]))
  // The watch lags the merge: judged only once it shows the new list and features, and our mark gone.
  const applied = (o: Observed) => {
    const spec = (o.installer?.spec ?? {}) as InstallerSpec
    return (
      !o.installer?.metadata.annotations?.[UPGRADE_ANNOTATION] &&
      JSON.stringify(parseComponents(spec).map((c) => [c.name, c.version])) === want &&
      Object.entries(plan.features.patch).every(([k, v]) => spec.features?.[k] === v)
    )
  }
  const removedLeft = (o: Observed) => {
    const left = plan.diff.removed.filter((c) => o.cds.has(c.name)).map((c) => c.name)
    return left.length
      ? `waiting for the installer's release to drop the definitions of removed ${left.join(', ')}`
      : null
  }
  return followStep(u.cluster, u.run, u.opts, applied, removedLeft)
}
