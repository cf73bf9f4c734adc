// The hook's middle steps: the CompositionDefinition CRD, the installer CompositionDefinition at the chart's
// version, its CRD served; and the Secrets those steps write.
import { apiCall } from '../../cluster/cluster.js'
import { waitUntil } from '../follow-ready.js'
import { healStuck } from '../heal.js'
import { CoreV1Api } from '@kubernetes/client-node'
import { type Cluster, isNotFound } from '../../cluster/cluster.js'
import { ExitCode, UserError } from '../../platform/errors.js'
import { type RenderedBootstrap } from '../../cluster/chart.js'
import { dashed } from '../../platform/components.js'
import { COMPOSITION_GROUP } from '../../cluster/observe.js'
import { type KObj } from '../../platform/kobj.js'
import { crdServes } from '../../platform/objects.js'
import { type Step } from '../../ui/progress.js'
import { createOrPatchSpec } from '../../cluster/kube-write.js'
import type { RunContext } from '../operation.js'
import { MANAGED_BY_LABEL, MANAGED_BY_US } from '../../platform/ownership.js'

/** The hook's middle steps: the CompositionDefinition CRD, the installer CompositionDefinition at the chart's version, its CRD served. */
export function installerDefinitionSteps(
  cluster: Cluster,
  rendered: RenderedBootstrap,
  ns: string,
  run: RunContext,
): Step[] {
  const { interrupt, deadline } = run
  const watch = run.platformWatch
  const cdDashed = dashed(rendered.chartVersion)
  return [
    {
      title: 'Wait for CRD compositiondefinitions.core.krateo.io',
      run: async (r) => {
        await waitUntil(
          watch(),
          interrupt,
          deadline,
          (o) => o.cdCrd,
          () => 'the CRD is not there yet',
          r,
        )
        return 'established'
      },
    },
    {
      title: `Apply the installer CompositionDefinition (installer ${rendered.chartVersion})`,
      run: async () =>
        await apiCall(cluster, 'apply the installer CompositionDefinition', () =>
          createOrPatchSpec(cluster, rendered.selfCR.compositionDefinition, 'compositiondefinitions'),
        ),
    },
    {
      title: `Wait for CRD installers.${COMPOSITION_GROUP} to serve ${cdDashed}`,
      run: async (r) => {
        await waitUntil(
          watch(),
          interrupt,
          deadline,
          (o) => crdServes(o.crds.get(`installers.${COMPOSITION_GROUP}`), cdDashed),
          (o) => describeCD(o.cds.get('installer')),
          r,
          () => healStuck(cluster, watch(), r),
        )
        return 'served'
      },
    },
  ]
}

export function describeCD(cd: KObj | undefined): string {
  if (!cd) return 'waiting for core-provider to pick up the CompositionDefinition'
  const conds =
    (cd.status?.conditions as { type: string; status: string; reason?: string; message?: string }[] | undefined) ?? []
  return (
    conds
      .map((c) => `${c.type}=${c.status}${c.reason ? ` ${c.reason}` : ''}${c.message ? `: ${c.message}` : ''}`)
      .join(', ') || 'core-provider has not reported yet'
  )
}

/** Writes our Secret; one of the same name that is not ours is never replaced (it is the user's). */
export async function upsertSecret(
  cluster: Cluster,
  namespace: string,
  name: string,
  data: Record<string, string>,
): Promise<void> {
  const core = cluster.kc.makeApiClient(CoreV1Api)
  const body = {
    metadata: { name, namespace, labels: { [MANAGED_BY_LABEL]: MANAGED_BY_US } },
    type: 'Opaque',
    stringData: data,
  }
  await apiCall(cluster, `write Secret ${name}`, async () => {
    const existing = await core.readNamespacedSecret({ name, namespace }).catch((err) => {
      if (isNotFound(err)) return null
      throw err
    })
    if (!existing) return void (await core.createNamespacedSecret({ namespace, body }))
    if (existing.metadata?.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY_US) {
      throw new UserError(
        `Secret ${namespace}/${name} exists and was not written by krateo-installer`,
        ExitCode.Usage,
        'rename or remove it: the registry password is stored there',
      )
    }
    await core.replaceNamespacedSecret({
      name,
      namespace,
      body: { ...body, metadata: { ...body.metadata, resourceVersion: existing.metadata?.resourceVersion } },
    })
  })
}
