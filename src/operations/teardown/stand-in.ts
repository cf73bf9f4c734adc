// Stand-in CRDs for kinds the installer's release still lists but whose CRD is gone. The installer cdc
// uninstalls its release by building every object of the release's manifest; a kind whose CRD is gone (a
// CompositionDefinition deleted by hand takes its CRD along) fails that build, and the Installer would stay
// Terminating for good. A stand-in serving that kind lets helm map it and find nothing to delete.
import type { V1CustomResourceDefinition } from '@kubernetes/client-node'
import { parseAllDocuments } from 'yaml'
import { isNotFound, statusOf } from '../../cluster/cluster.js'
import type { Helm } from '../../cluster/helm.js'
import { STAND_IN_LABEL, STAND_IN_NAMESPACE_LABEL, lostKinds, standInCrd } from '../../platform/drain.js'
import { COMPOSITION_GROUP } from '../../platform/ownership.js'
import type { KObj } from '../../platform/kobj.js'
import type { StepReport } from '../../ui/progress.js'
import { CRD_COLLECTION, type TeardownRun } from './run.js'

/** Serves every kind the Installer's release lists whose CRD is gone, before the Installer is deleted. */
export async function standInForLostKinds(t: TeardownRun, installer: KObj, helm: Helm, report: StepReport) {
  const release = await compositionRelease(t, installer, helm)
  if (!release) return
  const manifest = parseAllDocuments(await helm.run(['get', 'manifest', release, '-n', t.namespace]))
    .map((d) => d.toJS() as KObj | null)
    .filter((o): o is KObj => !!o?.kind)
  const crds = await t.api('list CRDs', () => t.crdApi.listCustomResourceDefinition())
  for (const { kind, version } of lostKinds(manifest, crds.items)) {
    report.line(
      `the installer's release still lists ${kind} ${COMPOSITION_GROUP}/${version}, whose CRD is gone: a stand-in CRD lets helm uninstall it (removed right after)`,
    )
    await serveStandIn(t, standInCrd(kind, version, t.namespace), report)
  }
}

async function serveStandIn(t: TeardownRun, crd: V1CustomResourceDefinition, report: StepReport): Promise<void> {
  const name = crd.metadata!.name!
  await t.api(`create the stand-in CRD ${name}`, () =>
    t.crdApi.createCustomResourceDefinition({ body: crd }).catch((err) => {
      if (statusOf(err) !== 409) throw err
    }),
  )
  const w = t.watchObject(CRD_COLLECTION, name)
  try {
    await t.waitFor(
      `the stand-in CRD ${name} to be served`,
      async () => {
        const conditions = (w.current?.status as V1CustomResourceDefinition['status'] | undefined)?.conditions
        return conditions?.some((c) => c.type === 'Established' && c.status === 'True') ? true : null
      },
      report,
      () => `waiting for the stand-in CRD ${name} to be established`,
      [w],
    )
  } finally {
    t.unwatch(w)
  }
}

/** Removes the stand-ins this namespace's teardown created, once the Installer is gone. */
export async function removeStandIns(t: TeardownRun): Promise<void> {
  const standIns = await t.api('list stand-in CRDs', () =>
    t.crdApi.listCustomResourceDefinition({
      labelSelector: `${STAND_IN_LABEL}=true,${STAND_IN_NAMESPACE_LABEL}=${t.namespace}`,
    }),
  )
  for (const crd of standIns.items) {
    await t.api(`delete the stand-in CRD ${crd.metadata!.name}`, () =>
      t.crdApi.deleteCustomResourceDefinition({ name: crd.metadata!.name! }).catch((err) => {
        if (!isNotFound(err)) throw err
      }),
    )
  }
}

/** The helm release a cdc made for a Composition: the krateo.io/release-name label, else <name>-<8 chars of its uid> (contract section 3). */
async function compositionRelease(t: TeardownRun, obj: KObj, helm: Helm): Promise<string | null> {
  const preset = obj.metadata.labels?.['krateo.io/release-name']
  const releases = JSON.parse(
    (await helm.run(['list', '-n', t.namespace, ...helm.allStatuses(), '-o', 'json'])) || '[]',
  ) as { name: string }[]
  const prefix = `${obj.metadata.name}-`
  const found = releases.find((r) =>
    preset
      ? r.name === preset
      : r.name.startsWith(prefix) &&
        r.name.length === prefix.length + 8 &&
        (obj.metadata.uid ?? '').includes(r.name.slice(prefix.length)),
  )
  return found?.name ?? null
}
