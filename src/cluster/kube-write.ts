// The few writes the CLI makes through the API, each one idempotent so a re-run resumes.
import { PAUSED_ANNOTATION, customCollection, servedCollection } from '../platform/objects.js'
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import { MANAGED_BY_LABEL, MANAGED_BY_US, isInstallerRelease } from '../platform/ownership.js'
import type { Cluster } from './cluster.js'
import { getPath, isNotFound } from './cluster.js'
import type { KObj } from '../platform/kobj.js'

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch)

export interface ObjectRef {
  group: string
  version: string
  namespace: string
  plural: string
  name: string
}

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
 * Reads an object at the version its reader knew, or, when that answers 404 because the version is no longer served
 * (Gen N's core-provider stops serving a version nothing references), at the version its CRD serves now: a 404 is
 * "gone" only when the CRD says so. null when it is gone.
 */
export async function getCustomServed(cluster: Cluster, ref: ObjectRef): Promise<KObj | null> {
  const obj = await getCustom(cluster, ref)
  if (obj) return obj
  const path = `/apis/${ref.group}/${ref.version}/namespaces/${ref.namespace}/${ref.plural}`
  const crd = await getPath(
    cluster,
    `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${ref.plural}.${ref.group}`,
  )
  const served = servedCollection(path, crd)
  const version = served === 'gone' || served === 'unreadable' ? undefined : customCollection(served)?.version
  return version && version !== ref.version ? getCustom(cluster, { ...ref, version }) : null
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

/**
 * A write to a kind or version served moments ago, retried for up to `ms` while the API server is not ready
 * for it: 404 (the version is not in discovery yet) when `notFoundToo`, and 503 (a just-established CRD's
 * storage, or, on Kubernetes 1.36, the admission policy plugin's mapping of a new kind: Gen N's version stamp).
 */
async function whileServing<T>(write: () => Promise<T>, notFoundToo: boolean, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    try {
      return await write()
    } catch (err) {
      const retry = (err as { code?: number }).code === 503 || (notFoundToo && isNotFound(err))
      if (!retry || Date.now() > deadline) throw err
      await new Promise((r) => setTimeout(r, 500))
    }
  }
}

/** Creates the object, retrying while its version is not served yet; 'exists' when it already did (409). */
export async function createWhenServed(
  cluster: Cluster,
  ref: ObjectRef,
  body: KObj,
  ms = 15_000,
): Promise<'created' | 'exists'> {
  try {
    await whileServing(
      () =>
        cluster.custom.createNamespacedCustomObject({
          group: ref.group,
          version: ref.version,
          namespace: ref.namespace,
          plural: ref.plural,
          body: body as object,
        }),
      true,
      ms,
    )
    return 'created'
  } catch (err) {
    if ((err as { code?: number }).code === 409) return 'exists'
    throw err
  }
}

export async function mergePatchCustom(cluster: Cluster, ref: ObjectRef, body: unknown): Promise<KObj> {
  return (await whileServing(
    () => cluster.custom.patchNamespacedCustomObject({ ...ref, body: body as object }, mergePatch),
    false,
  )) as KObj
}

/** Creates the object, or merge-patches its spec when it exists; says which. */
export async function createOrPatchSpec(cluster: Cluster, obj: KObj, plural: string): Promise<'created' | 'updated'> {
  const ref = refOf(obj, plural)
  const existing = await getCustom(cluster, ref)
  if (!existing) {
    await cluster.custom.createNamespacedCustomObject({
      group: ref.group,
      version: ref.version,
      namespace: ref.namespace,
      plural,
      body: obj as object,
    })
    return 'created'
  }
  await mergePatchCustom(cluster, ref, { metadata: { labels: obj.metadata.labels ?? {} }, spec: obj.spec })
  return 'updated'
}

/**
 * Makes a cdc observe a Composition now, through the event it watches (contract section 3): any change of
 * krateo.io/paused. Toggles between "false" and absent, so each nudge is a change and nothing is ever paused.
 */
export async function nudge(cluster: Cluster, obj: KObj): Promise<void> {
  const now = obj.metadata.annotations?.[PAUSED_ANNOTATION]
  if (now === 'true') return
  await mergePatchCustom(cluster, refOf(obj, 'installers'), {
    metadata: { annotations: { [PAUSED_ANNOTATION]: now === 'false' ? null : 'false' } },
  })
}

/**
 * Makes a component's cdc observe its Composition now and leaves no trace: krateo.io/paused set to "false" (held
 * on the resourceVersion that was judged) and taken away again, two changes of the annotation it watches. False
 * when the Composition changed since it was judged (its controller moved on).
 */
export async function nudgeComposition(cluster: Cluster, obj: KObj, plural: string): Promise<boolean> {
  if (obj.metadata.annotations?.[PAUSED_ANNOTATION] !== undefined) return false
  const ref = refOf(obj, plural)
  const conflict = (err: unknown) => {
    if ((err as { code?: number }).code === 409) return null
    throw err
  }
  const set = {
    metadata: { resourceVersion: obj.metadata.resourceVersion, annotations: { [PAUSED_ANNOTATION]: 'false' } },
  }
  let current: KObj | null = await mergePatchCustom(cluster, ref, set).catch(conflict)
  if (!current) return false
  // Taken away only while it is still our "false", on the version read (the cdc writes status meanwhile).
  for (let i = 0; i < 5 && current?.metadata.annotations?.[PAUSED_ANNOTATION] === 'false'; i++) {
    const rv: string | undefined = current.metadata.resourceVersion
    const removed: KObj | null = await mergePatchCustom(cluster, ref, {
      metadata: { resourceVersion: rv, annotations: { [PAUSED_ANNOTATION]: null } },
    }).catch(conflict)
    current = removed ? null : await getCustom(cluster, ref)
  }
  return true
}

/** The CRD the CLI creates and deletes at once so that readers of discovery see a CRD event (refreshDiscovery). */
export const DISCOVERY_REFRESH_CRD = 'discoveryrefreshes.cli.krateo-installer.io'

/**
 * Makes the engine's discovery readers read discovery again through the event they watch: a CRD added and deleted
 * (chart-inspector 0.2.0 resets its REST mapper on a CRD add, delete or spec change, never on a CRD becoming
 * served). The CRD is the CLI's own, by a name and group nobody else uses and our label, without instances; its
 * delete holds on its uid. One left by a run killed half-way is deleted instead (a CRD is a cluster object: a
 * namespace user can neither create nor label one).
 */
export async function refreshDiscovery(cluster: Cluster): Promise<void> {
  const [plural, ...rest] = DISCOVERY_REFRESH_CRD.split('.')
  const group = rest.join('.')
  const body = {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: DISCOVERY_REFRESH_CRD, labels: { [MANAGED_BY_LABEL]: MANAGED_BY_US } },
    spec: {
      group,
      scope: 'Cluster',
      names: { plural: plural!, singular: 'discoveryrefresh', kind: 'DiscoveryRefresh' },
      versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object' } } }],
    },
  }
  const created = await cluster.crds.createCustomResourceDefinition({ body }).catch(async (err: unknown) => {
    if ((err as { code?: number }).code !== 409) throw err
    await removeLeftDiscoveryRefresh(cluster)
    return null
  })
  if (created) await deleteDiscoveryRefresh(cluster, created.metadata!.uid!)
}

const deleteDiscoveryRefresh = (cluster: Cluster, uid: string) =>
  cluster.crds
    .deleteCustomResourceDefinition({ name: DISCOVERY_REFRESH_CRD, body: { preconditions: { uid } } })
    .then(() => true)
    .catch((err: unknown) => {
      if (!isNotFound(err)) throw err
      return false
    })

/** The refresh CRD a run killed between its create and delete left, when it is ours (our label); true if it went. */
export async function removeLeftDiscoveryRefresh(cluster: Cluster): Promise<boolean> {
  const left = await cluster.crds
    .readCustomResourceDefinition({ name: DISCOVERY_REFRESH_CRD })
    .catch((err: unknown) => {
      if (isNotFound(err)) return null
      throw err
    })
  if (left?.metadata?.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY_US) return false
  return deleteDiscoveryRefresh(cluster, left.metadata.uid!)
}

/** Removes what nudges left ("false"), never a pause someone set. */
export async function clearNudge(cluster: Cluster, obj: KObj): Promise<void> {
  if (obj.metadata.annotations?.[PAUSED_ANNOTATION] !== 'false') return
  await removeAnnotation(cluster, refOf(obj, 'installers'), PAUSED_ANNOTATION)
}

/** Whether the installer cdc's helm release of this Installer is pending (helm in flight), from helm's release Secrets. */
export async function installerReleasePending(cluster: Cluster, installer: KObj): Promise<boolean> {
  const ns = installer.metadata.namespace!
  const secrets = await cluster.core.listNamespacedSecret({ namespace: ns, labelSelector: 'owner=helm' })
  const releases = secrets.items.filter((s) => isInstallerRelease(s.metadata?.labels?.name, installer))
  const latest = releases.sort(
    (a, b) => Number(b.metadata?.labels?.version ?? 0) - Number(a.metadata?.labels?.version ?? 0),
  )[0]
  return (latest?.metadata?.labels?.status ?? '').startsWith('pending')
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
    await cluster.core.createNamespace({
      body: { metadata: { name, labels: { [MANAGED_BY_LABEL]: MANAGED_BY_US } } },
    })
  } catch (err) {
    if ((err as { code?: number }).code !== 409) throw err
  }
  return 'created'
}
