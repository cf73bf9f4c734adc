// Reads the objects the platform state is derived from, in as few API requests as the contract allows:
// CompositionDefinitions and Services of the namespace (one list each), the composition CRDs (one list),
// the Installer CR and each component's Composition (one GET each, only once its CRD serves), then the
// workloads and pods of the namespaces the releases use (one list per kind), to tell running from installed.
import { type Cluster, apiFailure, getPath, isNotFound, readFailure, statusOf } from './cluster.js'
import { KIND_OF, WORKLOAD_RESOURCES, workloadNamespaces } from '../platform/workloads.js'
import { type Observed, crdServes } from '../platform/objects.js'
import { type KObj } from '../platform/kobj.js'
import { type InstallerSpec, dashed, parseComponents } from '../platform/components.js'

export const CD_GROUP = 'core.krateo.io'
export const CD_VERSION = 'v1alpha1'
import { COMPOSITION_GROUP, isPlatformDefinition } from '../platform/ownership.js'
export { COMPOSITION_GROUP }
export const SELF_CR_CONFIGMAP = 'installer-self-cr'

async function orNull<T>(p: Promise<T>): Promise<T | null> {
  try {
    return await p
  } catch (err) {
    if (isNotFound(err)) return null
    throw err
  }
}

/** Runs fns with at most `limit` in flight. */
export async function pooled<T>(fns: (() => Promise<T>)[], limit = 8): Promise<T[]> {
  const out: T[] = new Array(fns.length)
  let next = 0
  const worker = async () => {
    while (next < fns.length) {
      const i = next++
      out[i] = await fns[i]!()
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, fns.length) }, worker))
  return out
}

/** How long a read of the platform state retries answers that mean "shortly" (429, 503) before it fails. */
const SHORTLY_MS = 30_000

export async function observe(cluster: Cluster, namespace: string): Promise<Observed> {
  const until = Date.now() + SHORTLY_MS
  for (;;) {
    try {
      return await observeUnsafe(cluster, namespace)
    } catch (err) {
      // A CRD created a moment ago answers 429 "storage is (re)initializing" (seen on the real engine's lane when
      // a re-run reads right after the killed run's bootstrap made the CompositionDefinition CRD); 503 likewise.
      const status = statusOf(err)
      if ((status === 429 || status === 503) && Date.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, 1000))
        continue
      }
      throw apiFailure(err, cluster, 'read the platform state')
    }
  }
}

async function observeUnsafe(cluster: Cluster, namespace: string): Promise<Observed> {
  const [cdList, crdList, svcList, selfCR] = await Promise.all([
    orNull(
      cluster.custom.listNamespacedCustomObject({
        group: CD_GROUP,
        version: CD_VERSION,
        namespace,
        plural: 'compositiondefinitions',
      }),
    ),
    cluster.crds.listCustomResourceDefinition(),
    cluster.core.listNamespacedService({ namespace }),
    orNull(cluster.core.readNamespacedConfigMap({ name: SELF_CR_CONFIGMAP, namespace })),
  ])
  const cds = new Map<string, KObj>(
    ((cdList as { items?: KObj[] } | null)?.items ?? []).map((cd) => [cd.metadata.name, cd]),
  )
  const crds = new Map<string, KObj>()
  let cdCrd = false
  for (const crd of crdList.items) {
    if (crd.metadata?.name === `compositiondefinitions.${CD_GROUP}`) cdCrd = true
    if (crd.spec.group === COMPOSITION_GROUP) crds.set(crd.metadata!.name!, crd as unknown as KObj)
  }
  const installer = await readInstaller(cluster, namespace, cds, crds)
  const readErrors: string[] = []
  const compositions = installer
    ? await readCompositions(cluster, namespace, installer, cds, crds, readErrors)
    : new Map<string, KObj>()
  const services = svcList.items as unknown as KObj[]
  const { workloads, pods } = await readWorkloads(
    cluster,
    workloadNamespaces(compositions.values(), namespace),
    readErrors,
  )
  const nodeIP = services.some((s) => (s.spec as { type?: string }).type === 'NodePort')
    ? await nodeAddress(cluster)
    : undefined
  return {
    namespace,
    cdCrd,
    bootstrapped: !!selfCR,
    selfCr: (selfCR ?? null) as unknown as KObj | null,
    installer,
    cds,
    crds,
    compositions,
    services,
    workloads,
    pods,
    nodeIP,
    readErrors,
    now: Date.now(),
  }
}

/**
 * Each component's Composition, once its CRD serves; a kind that cannot be read is named in readErrors. Only
 * through a definition the installer rendered: a team's blueprint named like a component (one switched off, say)
 * is not the platform's, and neither is its Composition.
 */
async function readCompositions(
  cluster: Cluster,
  namespace: string,
  installer: KObj,
  cds: Map<string, KObj>,
  crds: Map<string, KObj>,
  readErrors: string[],
): Promise<Map<string, KObj>> {
  const compositions = new Map<string, KObj>()
  const components = parseComponents((installer.spec ?? {}) as InstallerSpec)
  const names = new Set(components.map((c) => c.name))
  const reads = components.flatMap((c) => {
    const cd = cds.get(c.name)
    if (!cd || !isPlatformDefinition(cd, names, installer)) return []
    const resource = cd.status?.resource as string | undefined
    const crd = resource ? crds.get(`${resource}.${COMPOSITION_GROUP}`) : undefined
    if (!resource || !crd) return []
    // Read through the pinned version when served, else any served one (a version bump in flight).
    const versions = (crd.spec?.versions as { name: string; served: boolean }[]).filter((v) => v.served)
    const version = crdServes(crd, dashed(c.version)) ? dashed(c.version) : versions[0]?.name
    if (!version) return []
    return [
      async () => {
        try {
          const obj = await orNull(
            cluster.custom.getNamespacedCustomObject({
              group: COMPOSITION_GROUP,
              version,
              namespace,
              plural: resource,
              name: c.name,
            }),
          )
          if (obj) compositions.set(c.name, obj as KObj)
        } catch (err) {
          // One kind that cannot be read (a conversion webhook whose core-provider is down) must not hide the rest.
          readErrors.push(
            `${c.name}: cannot read its Composition (${resource}.${COMPOSITION_GROUP}/${version}): ${readFailure(err)}`,
          )
        }
      },
    ]
  })
  await pooled(reads)
  return compositions
}

/** The address a NodePort is reached at: the first node's InternalIP. */
async function nodeAddress(cluster: Cluster): Promise<string | undefined> {
  const nodes = await cluster.core.listNode()
  return nodes.items[0]?.status?.addresses?.find((a) => a.type === 'InternalIP')?.address
}

/** Where each workload kind (and pods) is listed, per namespace. */
export const WORKLOAD_LISTS: { kind: string; path: (ns: string) => string }[] = [
  ...WORKLOAD_RESOURCES.map((r) => ({
    kind: KIND_OF[r],
    path: (ns: string) => `/apis/${r === 'jobs' ? 'batch' : 'apps'}/v1/namespaces/${ns}/${r}`,
  })),
  { kind: 'Pod', path: (ns: string) => `/api/v1/namespaces/${ns}/pods` },
]

/** The workloads (kind set: list items carry none) and pods of the namespaces, one list per kind and namespace. */
async function readWorkloads(
  cluster: Cluster,
  namespaces: string[],
  readErrors: string[],
): Promise<{ workloads: KObj[]; pods: KObj[] }> {
  const workloads: KObj[] = []
  const pods: KObj[] = []
  await pooled(
    namespaces.flatMap((ns) =>
      WORKLOAD_LISTS.map((l) => async () => {
        try {
          const list = await getPath<{ items: KObj[] }>(cluster, l.path(ns))
          for (const item of list?.items ?? []) (l.kind === 'Pod' ? pods : workloads).push({ ...item, kind: l.kind })
        } catch (err) {
          readErrors.push(`cannot list ${l.kind}s in ${ns}: ${readFailure(err)}`)
        }
      }),
    ),
  )
  return { workloads, pods }
}

/** The Installer CR, read through the version its CompositionDefinition reports, else any served one. */
export async function readInstaller(
  cluster: Cluster,
  namespace: string,
  cds: Map<string, KObj>,
  crds: Map<string, KObj>,
): Promise<KObj | null> {
  const crd = crds.get(`installers.${COMPOSITION_GROUP}`)
  if (!crd) return null
  const fromCD = (cds.get('installer')?.status?.apiVersion as string | undefined)?.split('/')[1]
  const served = (crd.spec?.versions as { name: string; served: boolean }[]).filter((v) => v.served).map((v) => v.name)
  const version = fromCD && served.includes(fromCD) ? fromCD : served[served.length - 1]
  if (!version) return null
  return (await orNull(
    cluster.custom.getNamespacedCustomObject({
      group: COMPOSITION_GROUP,
      version,
      namespace,
      plural: 'installers',
      name: 'installer',
    }),
  )) as KObj | null
}
