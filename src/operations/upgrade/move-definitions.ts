// The definitions that move ahead of the Installer, dependencies first, each followed until its release runs
// at the new version (so each component upgrades in place); and the drain of a component the new list drops.
import { apiCall } from '../../cluster/cluster.js'
import { getCustom, mergePatchCustom } from '../../cluster/kube-write.js'
import { CD_GROUP, CD_VERSION, COMPOSITION_GROUP } from '../../cluster/observe.js'
import { type Component, type InstallerSpec, dashed } from '../../platform/components.js'
import { renderedByInstaller } from '../../platform/ownership.js'
import { crdServes } from '../../platform/objects.js'
import { moved } from '../../platform/upgrade-plan.js'
import type { Step, StepReport } from '../../ui/progress.js'
import { waitUntil } from '../follow-ready.js'
import { healStuck } from '../heal.js'
import { relabeller } from './relabel.js'
import type { UpgradeRun } from './plan.js'

export function moveDefinitionsStep(u: UpgradeRun, staged: Component[][]): Step {
  return {
    title: `Move ${staged.flat().length} component definitions to their new versions, dependencies first`,
    run: async (r) => {
      const relabel = relabeller(u.cluster, r)
      for (const layer of staged) {
        for (const c of layer) await moveDefinition(u, c, r)
        await waitLayerMoved(u, layer, relabel, r)
        r.line(`${layer.map((c) => `${c.name} ${c.version}`).join(', ')}: running at the new version`)
      }
      return u.plan.diff.changed.map((c) => `${c.name} ${c.to}`).join(', ')
    },
  }
}

/** Pass A's shape (contract section 1): url = <repo or ociRepo>/<chart or name>, version = the pin. */
async function moveDefinition(u: UpgradeRun, c: Component, r: StepReport): Promise<void> {
  const nextSpec = (u.plan.rendered.selfCR.installer.spec ?? {}) as InstallerSpec & { ociRepo?: string }
  const chart = { url: `${c.repo ?? nextSpec.ociRepo}/${c.chart ?? c.name}`, version: c.version }
  const ref = {
    group: CD_GROUP,
    version: CD_VERSION,
    namespace: u.opts.namespace,
    plural: 'compositiondefinitions',
    name: c.name,
  }
  await apiCall(u.cluster, `update CompositionDefinition ${c.name}`, () =>
    mergePatchCustom(u.cluster, ref, { spec: { chart } }),
  )
  r.line(`${c.name}: CompositionDefinition -> ${c.version}`)
}

/** Until every definition of the layer runs at its new version; heals lost creates and lost relabels meanwhile. */
async function waitLayerMoved(
  u: UpgradeRun,
  layer: Component[],
  relabel: ReturnType<typeof relabeller>,
  r: StepReport,
): Promise<void> {
  const watch = u.run.platformWatch
  const had = (c: Component) => u.plan.observed.compositions.has(c.name)
  await waitUntil(
    watch(),
    u.run.interrupt,
    u.run.deadline,
    (o) => layer.every((c) => moved(o, c, had(c)) === null),
    (o) =>
      layer
        .flatMap((c) => {
          const why = moved(o, c, had(c))
          return why ? [`${c.name}: ${why}`] : []
        })
        .join('; '),
    r,
    async () => {
      await healStuck(u.cluster, watch(), r)
      const o = watch().snapshot()
      for (const c of layer) {
        const resource = o.cds.get(c.name)?.status?.resource as string | undefined
        if (resource && crdServes(o.crds.get(`${resource}.${COMPOSITION_GROUP}`), dashed(c.version)))
          await relabel(o.compositions.get(c.name), resource, dashed(c.version))
      }
    },
  )
}

/** Deletes a removed component's Composition, if any, while its cdc runs. */
export async function drainRemoved(u: UpgradeRun, c: Component, r: StepReport): Promise<void> {
  const { cluster } = u
  const namespace = u.opts.namespace
  const cd = await apiCall(cluster, `read CompositionDefinition ${c.name}`, () =>
    getCustom(cluster, {
      group: CD_GROUP,
      version: CD_VERSION,
      namespace,
      plural: 'compositiondefinitions',
      name: c.name,
    }),
  )
  if (cd && !renderedByInstaller(cd, u.plan.installer)) {
    r.line(`${c.name}: its CompositionDefinition is not the platform's (a user's of the same name): kept`)
    return
  }
  const resource = cd?.status?.resource as string | undefined
  const apiVersion = cd?.status?.apiVersion as string | undefined
  const comp =
    resource && apiVersion
      ? await apiCall(cluster, `read ${c.name}`, () =>
          getCustom(cluster, {
            group: COMPOSITION_GROUP,
            version: apiVersion.split('/')[1]!,
            namespace,
            plural: resource,
            name: c.name,
          }),
        )
      : null
  if (comp)
    await u.teardown.drainComposition({ ...c, kind: c.kind || String(cd?.status?.kind ?? '') }, comp, resource!, r)
  else r.line(`${c.name}: no Composition left`)
}
