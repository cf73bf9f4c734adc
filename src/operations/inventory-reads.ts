// The reads behind the inventory (inventory.ts): the platform's RestDefinition CRDs and StatefulSets, the
// objects an earlier run left finalizing, and the instances of platform kinds that are not the platform's.
import { type Cluster, getPath, readFailure, statusOf } from '../cluster/cluster.js'
import { type InstanceRef, type StatefulSetClaims, foreignInstances } from '../platform/foreign.js'
import type { Component } from '../platform/components.js'
import {
  COMPOSITION_GROUP,
  type ManagedRef,
  generatedCrdOf,
  partitionDefinitions,
  platformComponents,
  restCrdsOf,
  restDefinitionsOf,
} from '../platform/ownership.js'
import { type KObj } from '../platform/kobj.js'
import { printable } from '../platform/errors.js'
import { type Observed } from '../platform/objects.js'
import { type TeardownRecord, uidKey } from '../cluster/teardown-record.js'
import { bindsOurServiceAccount, bundleObjects } from '../platform/bundle.js'

/** The cluster's CRDs, and those generated from the platform's RestDefinitions (with their uids). */
export async function readRestCrds(cluster: Cluster, compositions: KObj[]) {
  const rds = restDefinitionsOf(compositions)
  const rdObjects = (await Promise.all(rds.map((m) => getPath(cluster, managedPath(m))))).filter((x): x is KObj => !!x)
  // Without the right to list CRDs only the check for kinds that convert through core-provider is lost.
  const crds = (
    await cluster.crds.listCustomResourceDefinition().catch((err) => {
      if (statusOf(err) === 403) return { items: [] }
      throw err
    })
  ).items
  const restCrds = rdObjects.length ? restCrdsOf(rdObjects as never, crds as never) : []
  const uids = Object.fromEntries(
    crds
      .filter((c) => restCrds.includes(c.metadata?.name ?? '') && c.metadata?.uid)
      .map((c) => [uidKey('CustomResourceDefinition', c.metadata!.name!), c.metadata!.uid!]),
  )
  return { crds, restCrds, uids }
}

/**
 * The uids of the cdc bundles of our definitions as they stand while those definitions exist (names core-provider
 * keeps for them); the cluster-wide half only when its binding grants it to the bundle's ServiceAccount here. The
 * sweep deletes only these objects (a uid precondition): one replaced since is kept.
 */
export async function readBundleUids(cluster: Cluster, namespace: string, bases: string[]) {
  const uids: Record<string, string> = {}
  await Promise.all(
    bases.map(async (base) => {
      const objects = bundleObjects(base, namespace)
      const live = await Promise.all(objects.map((o) => getPath(cluster, o.path)))
      const binding = live[objects.findIndex((o) => o.kind === 'ClusterRoleBinding')] as never
      const ours = bindsOurServiceAccount(binding, base, namespace)
      objects.forEach((o, i) => {
        const uid = live[i]?.metadata.uid
        if (uid && (!o.clusterWide || ours)) uids[uidKey(o.kind, o.name)] = uid
      })
    }),
  )
  return uids
}

/** The StatefulSets the platform's releases listed, with their claim templates (their PVCs are the platform's). */
export async function readStatefulSets(cluster: Cluster, compositions: KObj[]): Promise<StatefulSetClaims[]> {
  const sets = compositions.flatMap((c) =>
    ((c.status?.managed as ManagedRef[] | undefined) ?? []).filter((m) => m.resource === 'statefulsets'),
  )
  return (await Promise.all(sets.map((m) => getPath(cluster, managedPath(m)))))
    .filter((x): x is KObj => !!x)
    .map((s) => ({
      name: s.metadata.name,
      claimTemplates: (
        (s.spec as { volumeClaimTemplates?: { metadata?: { name?: string } }[] } | undefined)?.volumeClaimTemplates ??
        []
      )
        .map((t) => t.metadata?.name ?? '')
        .filter(Boolean),
    }))
}

/** Recorded objects of releases whose Composition is gone that are still being deleted (finalizers pending). */
export async function stillFinalizing(
  cluster: Cluster,
  obs: Observed,
  record: TeardownRecord | null,
): Promise<Map<string, ManagedRef[]>> {
  const gone = Object.entries(record?.released ?? {}).filter(([name]) => !obs.compositions.has(name))
  const found = await Promise.all(
    gone.map(async ([name, refs]) => {
      // Only what is being deleted: an object left standing (kept by its chart, or made again by someone) is not a
      // drain to finish; one that cannot be read is not waited for either.
      const objects = await Promise.all(
        refs.map(async (m) => ({ m, o: await getPath(cluster, managedPath(m)).catch(() => null) })),
      )
      return [name, objects.filter(({ o }) => !!o?.metadata.deletionTimestamp).map(({ m }) => m)] as const
    }),
  )
  return new Map(found.filter(([, left]) => left.length))
}

export function managedPath(m: ManagedRef): string {
  const prefix = m.apiVersion.includes('/') ? `/apis/${m.apiVersion}` : `/api/${m.apiVersion}`
  return `${prefix}${m.namespace ? `/namespaces/${m.namespace}` : ''}/${m.resource}/${m.name}`
}

/**
 * Instances of the kinds the platform's removal deletes (CRDs its charts ship, CRDs core-provider generated for
 * its definitions) that are not the platform's own: a user's Composition of a platform kind, a user's
 * RestDefinition. Listed cluster-wide, one list per kind.
 */
export async function instancesAtRisk(cluster: Cluster, obs: Observed, compositions: KObj[]): Promise<string[]> {
  const components = platformComponents(obs.installer, obs.selfCr ?? null)
  const names = new Set(components.map((c) => c.name))
  const ours = new Map<string, Set<string>>()
  const note = (plural: string, group: string, ns: string | undefined, name: string) => {
    const key = `${plural}.${group}`
    if (!ours.has(key)) ours.set(key, new Set())
    ours.get(key)!.add(`${ns ?? ''}/${name}`)
  }
  const kinds: { crd: string; shippedBy: string }[] = []
  for (const c of compositions) {
    for (const m of (c.status?.managed as ManagedRef[] | undefined) ?? []) {
      const group = m.apiVersion.includes('/') ? m.apiVersion.split('/')[0]! : ''
      if (m.resource === 'customresourcedefinitions')
        kinds.push({ crd: m.name, shippedBy: `the platform's ${c.metadata.name}` })
      else note(m.resource, group, m.namespace, m.name)
    }
  }
  const { ours: definitions } = partitionDefinitions(obs.cds.values(), names, obs.installer)
  for (const cd of definitions) {
    const crd = generatedCrdOf(cd)
    if (!crd) continue
    kinds.push({ crd, shippedBy: `the platform's CompositionDefinition ${cd.metadata.name}` })
    const [plural, ...group] = crd.split('.')
    // The platform's Composition of each of its kinds carries the definition's name (the Installer too).
    note(plural!, group.join('.'), obs.namespace, cd.metadata.name)
  }
  const lists = await Promise.all(
    kinds.map(async (k) => {
      const crd =
        obs.crds.get(k.crd) ??
        (await getPath<KObj>(cluster, `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${k.crd}`))
      const spec = crd?.spec as
        { group: string; names: { plural: string }; versions: { name: string; served: boolean }[] } | undefined
      const version = spec?.versions.find((v) => v.served)?.name
      if (!spec || !version) return { ...k, items: [], ours: new Set<string>() }
      // A list that fails proves nothing is there: its kind counts as at risk (fail closed), with the reason.
      let unlisted: string | undefined
      const list = await getPath<{ items: InstanceRef[] }>(
        cluster,
        `/apis/${spec.group}/${version}/${spec.names.plural}`,
      ).catch((err: unknown) => {
        unlisted = readFailure(err)
        return null
      })
      return { ...k, items: list?.items ?? [], ours: ours.get(k.crd) ?? new Set<string>(), unlisted }
    }),
  )
  const ourNames = new Set(definitions.map((cd) => cd.metadata.name))
  return [...foreignInstances(lists), ...(await hookTargets(cluster, obs, components, ourNames))]
}

/**
 * The installer chart's own teardown hook (contract section 1) deletes every component's Composition by kind and
 * name, enabled or not. A team's Composition named like a component the platform does not run now (its
 * definition is not ours: a feature off, say) would go with it when the Installer is deleted.
 */
async function hookTargets(cluster: Cluster, obs: Observed, components: Component[], ours: ReadonlySet<string>) {
  const out: string[] = []
  for (const c of components) {
    if (ours.has(c.name)) continue
    const crd = [...obs.crds.values()].find(
      (x) => (x.spec as { names?: { kind?: string } } | undefined)?.names?.kind === c.kind,
    )
    const spec = crd?.spec as { names: { plural: string }; versions: { name: string; served: boolean }[] } | undefined
    const version = spec?.versions.find((v) => v.served)?.name
    if (!spec || !version) continue
    const path = `/apis/${COMPOSITION_GROUP}/${version}/namespaces/${obs.namespace}/${spec.names.plural}/${c.name}`
    const why = `named like the platform's component ${c.name}, which it does not run now: the installer chart's own teardown hook deletes it by kind and name`
    // A read that fails proves nothing is there (fail closed, with the reason).
    const obj = await getPath(cluster, path).catch((err: unknown) => {
      out.push(
        `${c.kind} ${obs.namespace}/${c.name}, if it exists: it could not be read (${printable(readFailure(err).slice(0, 200))}); ${why}`,
      )
      return null
    })
    if (obj && !obj.metadata.deletionTimestamp) out.push(`${c.kind} ${obs.namespace}/${c.name} (${why})`)
  }
  return out
}
