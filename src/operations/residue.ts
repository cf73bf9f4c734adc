// What an uninstall leaves on purpose, and what --purge may remove of it: only what this platform provably
// owned. The namespace goes only when nothing in it is someone else's; PVCs only of the platform's
// StatefulSets; the CompositionDefinition CRD only when no CompositionDefinition and no core-provider is left
// anywhere in the cluster. Everything else is listed, with the reason it was kept.
import { AppsV1Api } from '@kubernetes/client-node'
import { type Cluster, getPath, isNotFound, METADATA_ONLY, readFailure, statusOf } from '../cluster/cluster.js'
import { pooled } from '../cluster/observe.js'
import { CD_GROUP, CD_VERSION } from '../cluster/observe.js'
import { LOCK_NAME } from '../platform/lease.js'
import { type NamespacedObject, type StatefulSetClaims, foreignInNamespace, isClaimOf } from '../platform/foreign.js'
import type { TeardownRecord } from '../cluster/teardown-record.js'

export interface ResidueItem {
  kind: 'pvc' | 'namespace' | 'crd'
  name: string
  /** The object that was judged, so --purge deletes that one and no other (a uid precondition). */
  uid?: string
  namespace?: string
  what: string
  command: string
  dataLoss: boolean
}

export interface Residue {
  /** Kept on purpose; --purge removes these. */
  items: ResidueItem[]
  /** Looks related but is not provably ours (or is still in use): kept even by --purge, with the reason. */
  kept: string[]
}

/** Namespaces that are never ours to delete, whatever is in them. */
export const SYSTEM_NAMESPACES = new Set(['default', 'kube-system', 'kube-public', 'kube-node-lease'])

interface ApiResource {
  name: string
  kind: string
  namespaced: boolean
  verbs: string[]
}

export interface NamespaceListing {
  objects: NamespacedObject[]
  /** API groups or kinds that could not be read (discovery or list failed): nothing can be proved about them. */
  unreadable: string[]
}

/**
 * Every object in the namespace, of every listable namespaced kind the API serves (discovery, then a
 * metadata-only list each). A group or kind that fails to answer is named in `unreadable`, never read as empty:
 * a conversion webhook that is gone (core-provider's, once uninstall removed it), an aggregated API that is
 * down, a 403. A kind that answers 404 is no longer served, so none of its objects can exist.
 */
export async function namespacedObjects(cluster: Cluster, namespace: string): Promise<NamespaceListing> {
  const unreadable: string[] = []
  const failed = (what: string) => (err: unknown) => {
    unreadable.push(`${what} (${readFailure(err)})`)
    return null
  }
  const groups = await getPath<{ groups: { preferredVersion: { groupVersion: string } }[] }>(cluster, '/apis').catch(
    failed('the API groups'),
  )
  const versions = ['v1', ...(groups?.groups ?? []).map((g) => g.preferredVersion.groupVersion)]
  const lists = await pooled(
    versions.map((gv) => async () => {
      const path = gv === 'v1' ? '/api/v1' : `/apis/${gv}`
      const res = await getPath<{ resources: ApiResource[] }>(cluster, path).catch(failed(gv))
      return (res?.resources ?? [])
        .filter((r) => r.namespaced && !r.name.includes('/') && r.verbs.includes('list') && r.kind !== 'Event')
        .map((r) => ({ path, gv, r }))
    }),
  )
  const out: NamespacedObject[] = []
  await pooled(
    lists.flat().map(({ path, gv, r }) => async () => {
      const list = await getPath<{
        items: {
          metadata: {
            name: string
            uid?: string
            labels?: Record<string, string>
            annotations?: Record<string, string>
            ownerReferences?: { kind: string; name: string; uid: string }[]
          }
        }[]
      }>(cluster, `${path}/namespaces/${namespace}/${r.name}`, { accept: METADATA_ONLY }).catch(
        failed(`${r.kind} (${gv})`),
      )
      for (const o of list?.items ?? []) {
        out.push({
          kind: r.kind,
          name: o.metadata.name,
          uid: o.metadata.uid,
          labels: o.metadata.labels,
          annotations: o.metadata.annotations,
          owners: (o.metadata.ownerReferences ?? []).map((x) => ({ kind: x.kind, name: x.name, uid: x.uid })),
        })
      }
    }),
  )
  // The same objects are served by more than one group (events, endpointslices): keep one of each.
  const seen = new Set<string>()
  const objects = out.filter((o) => {
    const k = `${o.kind}/${o.name}`
    if (seen.has(k)) return false
    seen.add(k)
    return true
  })
  return { objects, unreadable }
}

/**
 * What is left. `thorough` (for --purge) lists every object of the namespace to prove nothing foreign is in it
 * (a request per kind); otherwise the namespace is listed with the rule --purge applies to it.
 */
export async function residue(
  cluster: Cluster,
  namespace: string,
  record: TeardownRecord | null,
  thorough = true,
): Promise<Residue> {
  const [ns, crd] = await Promise.all([namespaceResidue(cluster, namespace, record, thorough), crdResidue(cluster)])
  return { items: [...ns.items, ...crd.items], kept: [...ns.kept, ...crd.kept] }
}

const SYSTEM_KEPT = (namespace: string) => `Namespace ${namespace}: a system namespace, never deleted`

const pvcItem = (namespace: string, name: string): ResidueItem => ({
  kind: 'pvc',
  name,
  namespace,
  what: `PersistentVolumeClaim ${namespace}/${name} (its data is lost when deleted)`,
  command: `kubectl delete pvc ${name} -n ${namespace}`,
  dataLoss: true,
})

const namespaceItem = (namespace: string): ResidueItem => ({
  kind: 'namespace',
  name: namespace,
  what: `Namespace ${namespace}`,
  command: `kubectl delete namespace ${namespace}`,
  dataLoss: false,
})

async function namespaceResidue(
  cluster: Cluster,
  namespace: string,
  record: TeardownRecord | null,
  thorough: boolean,
): Promise<Residue> {
  const ns = await cluster.core.readNamespace({ name: namespace }).catch((err) => {
    if (isNotFound(err)) return null
    throw err
  })
  if (!ns || ns.metadata?.deletionTimestamp) return { items: [], kept: [] }
  const sets = record?.statefulSets ?? []
  return thorough
    ? await provedResidue(cluster, namespace, ns.metadata?.uid, sets)
    : await listedResidue(cluster, namespace, sets)
}

/** The claims of the platform's StatefulSets, and the namespace with the rule --purge applies to it. */
async function listedResidue(cluster: Cluster, namespace: string, sets: StatefulSetClaims[]): Promise<Residue> {
  const claims = (await cluster.core.listNamespacedPersistentVolumeClaim({ namespace })).items.map(
    (p) => p.metadata!.name!,
  )
  const items = claims.filter((n) => isClaimOf(n, sets)).map((n) => pvcItem(namespace, n))
  if (SYSTEM_NAMESPACES.has(namespace)) return { items, kept: [SYSTEM_KEPT(namespace)] }
  const space = namespaceItem(namespace)
  items.push({
    ...space,
    what: `${space.what} (--purge deletes it only when nothing that is not the platform's is in it)`,
  })
  return { items, kept: [] }
}

/** Every object of the namespace read: the namespace is residue only when all of them are proved the platform's. */
async function provedResidue(
  cluster: Cluster,
  namespace: string,
  uid: string | undefined,
  sets: StatefulSetClaims[],
): Promise<Residue> {
  const { objects, unreadable } = await namespacedObjects(cluster, namespace)
  const items: ResidueItem[] = objects
    .filter((o) => o.kind === 'PersistentVolumeClaim' && isClaimOf(o.name, sets))
    .map((o) => ({ ...pvcItem(namespace, o.name), uid: o.uid }))
  const foreign = foreignInNamespace(objects, { own: { Lease: [LOCK_NAME] }, pvcs: sets })
  const kept: string[] = []
  if (SYSTEM_NAMESPACES.has(namespace)) kept.push(SYSTEM_KEPT(namespace))
  else if (unreadable.length) {
    // Fail closed: what cannot be read may hold someone else's objects.
    kept.push(
      `Namespace ${namespace}: ${unreadable.length} kinds could not be read, so nothing proves it holds only the platform's (${unreadable.slice(0, 3).join('; ')}${unreadable.length > 3 ? '; ...' : ''}); it is kept`,
    )
  } else if (foreign.length) {
    const sample = foreign
      .slice(0, 5)
      .map((o) => `${o.kind}/${o.name}`)
      .join(', ')
    kept.push(
      `Namespace ${namespace}: holds ${foreign.length} objects that are not the platform's (${sample}${foreign.length > 5 ? ', ...' : ''}), so it is kept`,
    )
  } else items.push({ ...namespaceItem(namespace), uid })
  return { items, kept }
}

async function crdResidue(cluster: Cluster): Promise<Residue> {
  const items: ResidueItem[] = []
  const kept: string[] = []
  const crdName = `compositiondefinitions.${CD_GROUP}`
  const crd = await cluster.crds.readCustomResourceDefinition({ name: crdName }).catch((err) => {
    if (isNotFound(err)) return null
    throw err
  })
  if (!crd || crd.metadata?.deletionTimestamp) return { items, kept }
  const cds = (
    (await cluster.custom.listClusterCustomObject({
      group: CD_GROUP,
      version: CD_VERSION,
      plural: 'compositiondefinitions',
    })) as { items: { metadata: { namespace?: string } }[] }
  ).items
  const coreProviders = (
    await cluster.kc
      .makeApiClient(AppsV1Api)
      .listDeploymentForAllNamespaces({ labelSelector: 'app.kubernetes.io/name=core-provider' })
  ).items
  if (cds.length) {
    const spaces = new Set(cds.map((c) => c.metadata.namespace))
    kept.push(
      `CustomResourceDefinition ${crdName}: ${cds.length} CompositionDefinitions in ${spaces.size} namespaces (${[...spaces].slice(0, 3).join(', ')}) still use it, so it is kept`,
    )
  } else if (coreProviders.length) {
    kept.push(
      `CustomResourceDefinition ${crdName}: core-provider still runs in ${coreProviders[0]!.metadata!.namespace}, so it is kept`,
    )
  } else {
    items.push({
      kind: 'crd',
      name: crdName,
      what: `CustomResourceDefinition ${crdName} (from core-provider's crds/ directory; no CompositionDefinition is left in the cluster)`,
      command: `kubectl delete crd ${crdName}`,
      dataLoss: false,
      uid: crd.metadata?.uid,
    })
  }
  return { items, kept }
}

/**
 * Removes the items (PVCs, the CRD, then the namespace, waiting for it to go), each only as the object that was
 * judged (uid precondition): one deleted and made again since, by anyone, is kept and named.
 */
export async function purge(
  cluster: Cluster,
  items: ResidueItem[],
  line: (m: string) => void,
  waitNamespaceGone: (name: string) => Promise<void>,
): Promise<void> {
  const order = { pvc: 0, crd: 1, namespace: 2 } as const
  for (const item of [...items].sort((a, b) => order[a.kind] - order[b.kind])) {
    const body = item.uid ? { preconditions: { uid: item.uid } } : undefined
    let deleted = true
    const settle = (err: unknown) => {
      if (isNotFound(err)) return
      if (statusOf(err) === 409) {
        deleted = false
        return
      }
      throw err
    }
    if (item.kind === 'pvc')
      await cluster.core
        .deleteNamespacedPersistentVolumeClaim({ name: item.name, namespace: item.namespace!, body })
        .catch(settle)
    if (item.kind === 'crd') await cluster.crds.deleteCustomResourceDefinition({ name: item.name, body }).catch(settle)
    if (item.kind === 'namespace') {
      await cluster.core.deleteNamespace({ name: item.name, body }).catch(settle)
      if (deleted) await waitNamespaceGone(item.name)
    }
    line(deleted ? `deleted: ${item.what}` : `kept: ${item.what}: it was replaced since it was checked`)
  }
}
