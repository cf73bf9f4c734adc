// Which helm release is the platform's bootstrap release. Everything that names it (helm's annotation on
// ConfigMap installer-self-cr, helm's own release Secrets) is writable by anyone with edit rights in the
// namespace; `helm uninstall` and `helm upgrade` of the release it names act with the operator's cluster-admin
// rights. So a release is the platform's only when evidence such a user cannot write says so:
// - an anchor: a ClusterRole (only cluster admins create those) that helm recorded as this release's in this
//   namespace and that grants rights on core.krateo.io (the installer chart's self-bootstrap RBAC and
//   core-provider's own role do; an unrelated app's do not), or the teardown record (kept in kube-system) naming
//   it; and
// - its manifest: every object helm would remove with it outside this namespace (cluster-scoped ones above all)
//   that exists carries helm's record of this release, so a release Secret edited to list someone else's objects
//   is refused before helm acts on it. Objects inside the namespace prove nothing either way: whoever can edit
//   the release Secret can edit (and delete) them too.
import { parseAllDocuments } from 'yaml'
import { RbacAuthorizationV1Api } from '@kubernetes/client-node'
import { type Cluster, getPath } from './cluster.js'
import type { Helm } from './helm.js'
import { HELM_NAMESPACE_ANNOTATION, HELM_RELEASE_ANNOTATION } from '../platform/ownership.js'

interface Meta {
  metadata?: {
    name?: string
    namespace?: string
    labels?: Record<string, string>
    annotations?: Record<string, string>
  }
}

/** A ClusterRole helm installed with this release that grants rights on Krateo's core API: a bootstrap release's. Pure. */
export function anchorsRelease(
  role: Meta & { rules?: { apiGroups?: string[] }[] },
  release: string,
  namespace: string,
): boolean {
  return (
    recordedAs(role, release, namespace) &&
    (role.rules ?? []).some((r) => (r.apiGroups ?? []).includes('core.krateo.io'))
  )
}

/** helm's record on an object says it belongs to this release in this namespace. Pure. */
export function recordedAs(obj: Meta, release: string, namespace: string): boolean {
  const ann = obj.metadata?.annotations ?? {}
  return ann[HELM_RELEASE_ANNOTATION] === release && ann[HELM_NAMESPACE_ANNOTATION] === namespace
}

export interface ManifestEntry {
  ref: string
  live: Meta | null
  /** In the release's own namespace, where its editors can write anyway. */
  inNamespace: boolean
}

/** Objects of a manifest outside the namespace that exist and are not helm's record of that release. Pure. */
export function foreignInManifest(entries: ManifestEntry[], release: string, namespace: string): string[] {
  return entries.filter((e) => !e.inNamespace && e.live && !recordedAs(e.live, release, namespace)).map((e) => e.ref)
}

export type ReleaseProof = { proved: true } | { proved: false; reason: string }

/**
 * Proves that `release` in `namespace` is a bootstrap release of the platform (see the file's comment).
 * `vouchedFor`: a release other evidence stands for (the admin-only record names it, or it is our own first
 * install left pending), which needs no anchor; its manifest is checked all the same.
 */
export async function proveBootstrapRelease(
  cluster: Cluster,
  helm: Helm,
  namespace: string,
  release: string,
  vouchedFor: string | null,
): Promise<ReleaseProof> {
  if (vouchedFor !== release) {
    const roles = await cluster.kc.makeApiClient(RbacAuthorizationV1Api).listClusterRole()
    if (!roles.items.some((role) => anchorsRelease(role as Meta, release, namespace)))
      return {
        proved: false,
        reason: `no ClusterRole of Krateo's (rights on core.krateo.io) was installed by helm release ${release} in ${namespace}`,
      }
  }
  const manifest = await helm.run(['get', 'manifest', release, '-n', namespace])
  const entries = await manifestEntries(cluster, manifest, namespace)
  const foreign = foreignInManifest(entries, release, namespace)
  if (foreign.length)
    return {
      proved: false,
      reason: `its release record lists ${foreign.length} object${foreign.length > 1 ? 's' : ''} that helm did not install with it (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', ...' : ''})`,
    }
  return { proved: true }
}

/** Each object of a manifest with its live counterpart (null when it does not exist or its kind is not served). */
async function manifestEntries(cluster: Cluster, manifest: string, namespace: string): Promise<ManifestEntry[]> {
  const objects = parseAllDocuments(manifest)
    .map((d) => d.toJSON() as (Meta & { apiVersion?: string; kind?: string }) | null)
    .filter((o): o is Meta & { apiVersion: string; kind: string } => !!o?.apiVersion && !!o.kind && !!o.metadata?.name)
  const resources = new Map<string, Promise<{ name: string; kind: string; namespaced: boolean }[]>>()
  const resourcesOf = (apiVersion: string) => {
    if (!resources.has(apiVersion))
      resources.set(
        apiVersion,
        getPath<{ resources: { name: string; kind: string; namespaced: boolean }[] }>(
          cluster,
          apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`,
        ).then((r) => r?.resources ?? []),
      )
    return resources.get(apiVersion)!
  }
  return Promise.all(
    objects.map(async (o) => {
      const ref = `${o.kind}/${o.metadata!.name}`
      const r = (await resourcesOf(o.apiVersion)).find((x) => x.kind === o.kind && !x.name.includes('/'))
      if (!r) return { ref, live: null, inNamespace: false }
      const inNamespace = r.namespaced && (o.metadata!.namespace ?? namespace) === namespace
      if (inNamespace) return { ref, live: null, inNamespace }
      const prefix = o.apiVersion.includes('/') ? `/apis/${o.apiVersion}` : `/api/${o.apiVersion}`
      const where = r.namespaced ? `/namespaces/${o.metadata!.namespace ?? namespace}` : ''
      return { ref, live: await getPath<Meta>(cluster, `${prefix}${where}/${r.name}/${o.metadata!.name}`), inNamespace }
    }),
  )
}
