// What an uninstall found to be the platform's, written down before it deletes anything. The proofs of
// ownership (our CompositionDefinitions, their CRDs and cdc bundles, our webhook, our RestDefinitions'
// CRDs, our StatefulSets' claims) disappear as the teardown goes; the record keeps them, so a re-run after
// `helm uninstall` still completes the sweep, and `--purge` can prove the namespace held a platform.
import type { Cluster } from './cluster.js'
import { isNotFound, statusOf } from './cluster.js'
import { ExitCode, UserError } from './errors.js'
import { type ManagedRef, MANAGED_BY_LABEL, MANAGED_BY_US, type StatefulSetClaims } from './ownership.js'

export const TEARDOWN_RECORD = 'krateo-installer-teardown'

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

export async function readRecord(cluster: Cluster, namespace: string): Promise<TeardownRecord | null> {
  try {
    const cm = await cluster.core.readNamespacedConfigMap({ name: TEARDOWN_RECORD, namespace })
    if (cm.metadata?.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY_US) return null
    return parseRecord(cm.data)
  } catch (err) {
    if (isNotFound(err)) return null
    throw err
  }
}

/** Writes the record (create or replace); a namespace already gone makes it a no-op. Never replaces a ConfigMap that is not ours. */
export async function writeRecord(cluster: Cluster, namespace: string, record: TeardownRecord): Promise<void> {
  const body = {
    metadata: { name: TEARDOWN_RECORD, namespace, labels: { [MANAGED_BY_LABEL]: MANAGED_BY_US } },
    data: { 'record.json': JSON.stringify(record) },
  }
  const existing = await cluster.core.readNamespacedConfigMap({ name: TEARDOWN_RECORD, namespace }).catch((err) => {
    if (isNotFound(err)) return null
    throw err
  })
  if (existing) {
    if (existing.metadata?.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY_US) {
      throw new UserError(
        `ConfigMap ${namespace}/${TEARDOWN_RECORD} exists and is not krateo-installer's`,
        ExitCode.Stuck,
        'rename or remove it; uninstall keeps its record there',
      )
    }
    await cluster.core.replaceNamespacedConfigMap({
      name: TEARDOWN_RECORD,
      namespace,
      body: { ...body, metadata: { ...body.metadata, resourceVersion: existing.metadata?.resourceVersion } },
    })
    return
  }
  try {
    await cluster.core.createNamespacedConfigMap({ namespace, body })
  } catch (err) {
    // The namespace is already gone (a purge ran): nothing is left to record.
    if (isNotFound(err)) return
    if (statusOf(err) === 409) return writeRecord(cluster, namespace, record)
    throw err
  }
}

export async function deleteRecord(cluster: Cluster, namespace: string): Promise<void> {
  await cluster.core.deleteNamespacedConfigMap({ name: TEARDOWN_RECORD, namespace }).catch((err) => {
    if (!isNotFound(err)) throw err
  })
}
