// The few writes the CLI makes through the API, each one idempotent so a re-run resumes.
import { AppsV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import type { Cluster } from './cluster.js'
import { isNotFound } from './cluster.js'
import type { KObj } from './state.js'

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch)

export interface ObjectRef { group: string; version: string; namespace: string; plural: string; name: string }

export function refOf(obj: KObj, plural: string): ObjectRef {
  const [group, version] = obj.apiVersion!.split('/') as [string, string]
  return { group, version, namespace: obj.metadata.namespace!, plural, name: obj.metadata.name }
}

export async function getCustom(cluster: Cluster, ref: ObjectRef): Promise<KObj | null> {
  try {
    return (await cluster.custom.getNamespacedCustomObject(ref)) as KObj
  } catch (err) {
    if (isNotFound(err)) return null
    throw err
  }
}

/**
 * Reads an object through a version its CRD has only just added: the API server serves a new version a moment
 * after the CRD lists it, and answers 404 until then. Retries 404s for up to `ms`; null if it stays missing.
 */
export async function getCustomWhenServed(cluster: Cluster, ref: ObjectRef, ms = 15_000): Promise<KObj | null> {
  const deadline = Date.now() + ms
  for (;;) {
    const obj = await getCustom(cluster, ref)
    if (obj || Date.now() > deadline) return obj
    await new Promise((r) => setTimeout(r, 500))
  }
}

/** Creates the object, retrying while its version is not served yet (404); 'exists' when it already did (409). */
export async function createWhenServed(cluster: Cluster, ref: ObjectRef, body: KObj, ms = 15_000): Promise<'created' | 'exists'> {
  const deadline = Date.now() + ms
  for (;;) {
    try {
      await cluster.custom.createNamespacedCustomObject({ group: ref.group, version: ref.version, namespace: ref.namespace, plural: ref.plural, body: body as object })
      return 'created'
    } catch (err) {
      if ((err as { code?: number }).code === 409) return 'exists'
      if (!isNotFound(err) || Date.now() > deadline) throw err
      await new Promise((r) => setTimeout(r, 500))
    }
  }
}

export async function mergePatchCustom(cluster: Cluster, ref: ObjectRef, body: unknown): Promise<KObj> {
  return (await cluster.custom.patchNamespacedCustomObject({ ...ref, body: body as object }, mergePatch)) as KObj
}

/** Creates the object, or merge-patches its spec when it exists; says which. */
export async function createOrPatchSpec(cluster: Cluster, obj: KObj, plural: string): Promise<'created' | 'updated'> {
  const ref = refOf(obj, plural)
  const existing = await getCustom(cluster, ref)
  if (!existing) {
    await cluster.custom.createNamespacedCustomObject({ group: ref.group, version: ref.version, namespace: ref.namespace, plural, body: obj as object })
    return 'created'
  }
  await mergePatchCustom(cluster, ref, { metadata: { labels: obj.metadata.labels ?? {} }, spec: obj.spec })
  return 'updated'
}

/** Like `kubectl rollout restart`: a restarted cdc lists and observes everything at once (contract section 3). */
export async function restartDeployment(cluster: Cluster, namespace: string, name: string): Promise<void> {
  const apps = cluster.kc.makeApiClient(AppsV1Api)
  const body = { spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': new Date().toISOString() } } } } }
  await apps.patchNamespacedDeployment({ name, namespace, body }, mergePatch)
}

export async function removeAnnotation(cluster: Cluster, ref: ObjectRef, key: string): Promise<void> {
  await mergePatchCustom(cluster, ref, { metadata: { annotations: { [key]: null } } })
}

/** Creates the namespace when it is missing (labelled: the platform made it), so the run lock can live there. */
export async function ensureNamespace(cluster: Cluster, name: string): Promise<'created' | 'exists'> {
  try {
    await cluster.core.readNamespace({ name })
    return 'exists'
  } catch (err) {
    if (!isNotFound(err)) throw err
  }
  try {
    await cluster.core.createNamespace({ body: { metadata: { name, labels: { 'app.kubernetes.io/managed-by': 'krateo-installer' } } } })
  } catch (err) {
    if ((err as { code?: number }).code !== 409) throw err
  }
  return 'created'
}
