// What is not the platform's beside it, and would be hurt by its removal: kinds that read through its
// core-provider, objects in its namespace nobody can prove are its own, instances of kinds it ships that no
// release of ours made. Listed, never touched. Pure functions.
import { COMPOSITION_GROUP } from './ownership.js'
import { printable } from './errors.js'

export interface ConvertingCrdLike {
  metadata?: { name?: string }
  spec?: {
    group?: string
    names?: { kind?: string }
    conversion?: { strategy?: string; webhook?: { clientConfig?: { service?: { namespace?: string }; url?: string } } }
  }
}

/**
 * Composition kinds that are not the platform's but whose every read goes through core-provider's conversion
 * webhook (core-provider puts it on a kind's CRD from its first version bump on, with its Service in the
 * platform's namespace): once uninstall removes core-provider, they cannot be read, listed or deleted until
 * a core-provider runs again. A webhook given by URL cannot be told apart, so it is listed too (listed, never
 * touched).
 */
export function unreadableWithoutCoreProvider(
  crds: ConvertingCrdLike[],
  namespace: string,
  ours: ReadonlySet<string>,
): string[] {
  return crds
    .filter(
      (c) =>
        c.spec?.group === COMPOSITION_GROUP &&
        !ours.has(c.metadata?.name ?? '') &&
        c.spec.conversion?.strategy === 'Webhook',
    )
    .filter((c) => {
      const cfg = c.spec?.conversion?.webhook?.clientConfig
      return cfg?.service ? cfg.service.namespace === namespace : !!cfg?.url
    })
    .map((c) => `${c.spec?.names?.kind ?? '?'} (CRD ${c.metadata?.name})`)
}

export interface StatefulSetClaims {
  name: string
  claimTemplates: string[]
}

/** A PVC a StatefulSet's volumeClaimTemplate made: `<template>-<statefulset>-<ordinal>`. */
export function isClaimOf(pvcName: string, sets: StatefulSetClaims[]): boolean {
  return sets.some((s) =>
    s.claimTemplates.some((t) => new RegExp(`^${escapeRe(`${t}-${s.name}-`)}\\d+$`).test(pvcName)),
  )
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

export interface NamespacedObject {
  kind: string
  name: string
  uid?: string
  labels?: Record<string, string>
  annotations?: Record<string, string>
  type?: string
  owners?: { kind: string; name: string; uid: string }[]
}

export interface OwnedInNamespace {
  /** Names of our own bookkeeping objects, by kind (the lock Lease). */
  own: Record<string, string[]>
  pvcs: StatefulSetClaims[]
}

/**
 * What keeps a namespace from being ours to delete: anything in it that Kubernetes does not put in every
 * namespace and that we cannot prove is the platform's. An object a controller derived from another one (the
 * pods of a ReplicaSet) is judged by its owners, and only when every owner is in the same namespace listing:
 * an owner elsewhere (cluster-scoped, or already gone) proves nothing, so the object counts. Pure.
 */
export function foreignInNamespace(objects: NamespacedObject[], owned: OwnedInNamespace): NamespacedObject[] {
  const listed = new Set(objects.map((o) => o.uid).filter(Boolean))
  return objects.filter((o) => {
    if (o.kind === 'ConfigMap' && o.name === 'kube-root-ca.crt') return false
    if (o.kind === 'ServiceAccount' && o.name === 'default') return false
    if (o.kind === 'Event') return false
    if (owned.own[o.kind]?.includes(o.name)) return false
    if (o.kind === 'PersistentVolumeClaim' && isClaimOf(o.name, owned.pvcs)) return false
    if (o.owners?.length && o.owners.every((w) => listed.has(w.uid))) return false
    // The API server's own mirror of a Service.
    if ((o.kind === 'Endpoints' || o.kind === 'EndpointSlice') && !o.owners?.length) return false
    return true
  })
}

export interface InstanceRef {
  apiVersion?: string
  kind?: string
  metadata: { name: string; namespace?: string; deletionTimestamp?: string }
}

/**
 * Objects that the platform's removal would delete although they are not the platform's: instances of a kind
 * whose CRD the platform ships (a chart's CRD, or a CRD core-provider generated for our definitions) that no
 * release of ours made, and that are not already being deleted. Pure: `ours` holds `<namespace>/<name>` of each kind's objects that are ours.
 */
export function foreignInstances(
  kinds: { crd: string; shippedBy: string; items: InstanceRef[]; ours: ReadonlySet<string>; unlisted?: string }[],
): string[] {
  const out: string[] = []
  for (const k of kinds) {
    if (k.unlisted !== undefined)
      out.push(
        `every object of ${k.crd}: the list failed (${printable(k.unlisted.split('\n')[0]!.slice(0, 200))}), so none can be proved the platform's (its CRD goes with ${k.shippedBy})`,
      )
    for (const o of k.items) {
      const key = `${o.metadata.namespace ?? ''}/${o.metadata.name}`
      // Already being deleted (a drained release's object waiting on its controller's finalizer): removing the
      // platform takes nothing from anyone there.
      if (o.metadata.deletionTimestamp) continue
      if (!k.ours.has(key))
        out.push(
          `${o.kind ?? k.crd} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name} (its CRD ${k.crd} goes with ${k.shippedBy})`,
        )
    }
  }
  return out
}
