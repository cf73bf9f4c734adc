// What an uninstall found to be the platform's, written down before it deletes anything. The proofs of
// ownership (our CompositionDefinitions, their CRDs and cdc bundles, our webhook, our RestDefinitions'
// CRDs, our StatefulSets' claims) disappear as the teardown goes; the record keeps them, so a re-run after
// `helm uninstall` still completes the sweep, and `--purge` can prove the namespace held a platform.
//
// The record is evidence only because nobody but a cluster admin can write it: it lives in kube-system
// (ConfigMap krateo-installer-teardown.<namespace>), not in the platform's namespace, where others have edit
// rights. Each entry keeps the uid of the object that was proved, and an object is acted on only as that
// object (a uid precondition); one made again since is proved again or kept.
import type { Cluster } from './cluster.js'
import { isNotFound, statusOf } from './cluster.js'
import { ExitCode, UserError } from '../platform/errors.js'
import { type ManagedRef, MANAGED_BY_LABEL, MANAGED_BY_US } from '../platform/ownership.js'
import { type StatefulSetClaims } from '../platform/foreign.js'

/** Where records live: a namespace whose writers are cluster admins. */
export const RECORD_NAMESPACE = 'kube-system'
/** The label that says which platform namespace a record is about. */
export const RECORD_FOR_LABEL = 'krateo-installer.krateo.io/namespace'

/** The record of one platform namespace (ConfigMap names allow dots; namespace names have none). */
export function recordName(namespace: string): string {
  return `krateo-installer-teardown.${namespace}`
}

export interface TeardownRecord {
  /** The bootstrap release, as helm named it. */
  release: string | null
  /** CompositionDefinitions of the platform (the installer's own included). */
  definitions: string[]
  /** CRDs core-provider generated for them. */
  crds: string[]
  /** cdc bundle bases, `<plural>-<version>`. */
  bundles: string[]
  /** core-provider webhooks of our release. */
  webhooks: string[]
  /** core-provider's MutatingAdmissionPolicies (and their bindings, same name) of our release: Gen N. */
  policies?: string[]
  /** CRDs oasgen-provider generated from our RestDefinitions. */
  restCrds: string[]
  /** StatefulSets our releases ran, with their claim templates: their PVCs are ours. */
  statefulSets: StatefulSetClaims[]
  /** Secrets this CLI wrote (registry credentials). */
  secrets: string[]
  /**
   * What each component's release listed (status.managed) when it was recorded. Once a Composition is gone
   * its objects may still be finalizing (an interrupted drain); a re-run waits for them before their
   * finalizing providers go, which it could not know from the cluster any more.
   */
  released?: Record<string, ManagedRef[]>
  /** The uid of each object proved ours, by `Kind/name` (the object recorded, not any later one of that name). */
  uids?: Record<string, string>
  startedAt: string
  /** Set once the sweep is complete. */
  completedAt?: string
}

export function emptyRecord(now = new Date()): TeardownRecord {
  return {
    release: null,
    definitions: [],
    crds: [],
    bundles: [],
    webhooks: [],
    policies: [],
    restCrds: [],
    statefulSets: [],
    secrets: [],
    released: {},
    uids: {},
    startedAt: now.toISOString(),
  }
}

/** Adds what was learned to the record; nothing once known is forgotten. Pure. */
export function mergeRecord(base: TeardownRecord, add: Partial<TeardownRecord>): TeardownRecord {
  const union = (a: string[], b: string[] = []) => [...new Set([...a, ...b])].sort()
  const sets = new Map(base.statefulSets.map((s) => [s.name, s]))
  const released: Record<string, ManagedRef[]> = { ...base.released }
  for (const [name, refs] of Object.entries(add.released ?? {})) {
    const byKey = new Map(
      [...(released[name] ?? []), ...refs].map((m) => [
        `${m.apiVersion}/${m.resource}/${m.namespace ?? ''}/${m.name}`,
        m,
      ]),
    )
    released[name] = [...byKey.values()]
  }
  for (const s of add.statefulSets ?? [])
    sets.set(s.name, { name: s.name, claimTemplates: union(sets.get(s.name)?.claimTemplates ?? [], s.claimTemplates) })
  return {
    ...base,
    release: add.release ?? base.release,
    definitions: union(base.definitions, add.definitions),
    crds: union(base.crds, add.crds),
    bundles: union(base.bundles, add.bundles),
    webhooks: union(base.webhooks, add.webhooks),
    policies: union(base.policies ?? [], add.policies),
    restCrds: union(base.restCrds, add.restCrds),
    secrets: union(base.secrets, add.secrets),
    statefulSets: [...sets.values()].sort((a, b) => a.name.localeCompare(b.name)),
    released,
    // What was proved last names the object of today: an earlier uid of the same name is another object.
    uids: { ...base.uids, ...add.uids },
    completedAt: add.completedAt ?? base.completedAt,
  }
}

export function parseRecord(data: Record<string, string> | undefined): TeardownRecord | null {
  const text = data?.['record.json']
  if (!text) return null
  try {
    const saved = JSON.parse(text) as Partial<TeardownRecord>
    return mergeRecord({ ...emptyRecord(), startedAt: saved.startedAt ?? new Date().toISOString() }, saved)
  } catch {
    return null
  }
}

/** The key of an object in `uids`. */
export const uidKey = (kind: string, name: string) => `${kind}/${name}`

/** The platform namespace's record; null when there is none, or when this user may not read kube-system. */
export async function readRecord(cluster: Cluster, namespace: string): Promise<TeardownRecord | null> {
  try {
    const cm = await cluster.core.readNamespacedConfigMap({ name: recordName(namespace), namespace: RECORD_NAMESPACE })
    if (cm.metadata?.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY_US) return null
    if (cm.metadata?.labels?.[RECORD_FOR_LABEL] !== namespace) return null
    return parseRecord(cm.data)
  } catch (err) {
    // No record is no evidence: nothing is trusted that only a record could prove.
    if (isNotFound(err) || statusOf(err) === 403) return null
    throw err
  }
}

/** Writes the record (create or replace). Never replaces a ConfigMap that is not ours. */
export async function writeRecord(cluster: Cluster, namespace: string, record: TeardownRecord): Promise<void> {
  const name = recordName(namespace)
  const body = {
    metadata: {
      name,
      namespace: RECORD_NAMESPACE,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY_US, [RECORD_FOR_LABEL]: namespace },
    },
    data: { 'record.json': JSON.stringify(record) },
  }
  const existing = await cluster.core.readNamespacedConfigMap({ name, namespace: RECORD_NAMESPACE }).catch((err) => {
    if (isNotFound(err)) return null
    throw err
  })
  if (existing) {
    if (existing.metadata?.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY_US) {
      throw new UserError(
        `ConfigMap ${RECORD_NAMESPACE}/${name} exists and is not krateo-installer's`,
        ExitCode.Stuck,
        'rename or remove it; uninstall keeps its record there',
      )
    }
    try {
      await cluster.core.replaceNamespacedConfigMap({
        name,
        namespace: RECORD_NAMESPACE,
        body: { ...body, metadata: { ...body.metadata, resourceVersion: existing.metadata?.resourceVersion } },
      })
    } catch (err) {
      if (statusOf(err) === 409) return writeRecord(cluster, namespace, record)
      throw err
    }
    return
  }
  try {
    await cluster.core.createNamespacedConfigMap({ namespace: RECORD_NAMESPACE, body })
  } catch (err) {
    if (statusOf(err) === 409) return writeRecord(cluster, namespace, record)
    throw err
  }
}

/** Removes the record once nothing is left that it could serve (after --purge). */
export async function deleteRecord(cluster: Cluster, namespace: string): Promise<void> {
  await cluster.core
    .deleteNamespacedConfigMap({ name: recordName(namespace), namespace: RECORD_NAMESPACE })
    .catch((err) => {
      if (!isNotFound(err)) throw err
    })
}
