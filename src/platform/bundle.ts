// A CompositionDefinition's cdc bundle: the objects core-provider makes for it, named after its generated
// kind and version (contract section 2), and which of them are provably the platform's.
import { dashed } from './components.js'
import type { KObj } from './kobj.js'

/** The base name of a CompositionDefinition's cdc bundle, `<plural>-<version>` (contract section 2). */
export function bundleBaseOf(cd: KObj): string | null {
  const resource = cd.status?.resource as string | undefined
  const version = (cd.status?.apiVersion as string | undefined)?.split('/')[1]
  return resource && version ? `${resource}-${version}` : null
}

/** The cdc Deployment that clears a Composition's finalizer: `<plural>-<version>-controller` of its definition. */
export function cdcDeploymentOf(cd: KObj | undefined): string | null {
  const base = cd ? bundleBaseOf(cd) : null
  return base ? `${base}-controller` : null
}

const RBAC_API = '/apis/rbac.authorization.k8s.io/v1'

export interface BundleObject {
  kind: string
  name: string
  /** Its API path. */
  path: string
  /** ClusterRoleBinding and ClusterRole: cluster-scoped, so only admins (and core-provider) write them. */
  clusterWide?: boolean
}

/** The objects of a cdc bundle as core-provider names them (contract section 2); the binding before its role. */
export function bundleObjects(base: string, namespace: string): BundleObject[] {
  const at = (api: string, plural: string, name: string) => `${api}/namespaces/${namespace}/${plural}/${name}`
  const rbac = (name: string) => [
    { kind: 'Role', name, path: at(RBAC_API, 'roles', name) },
    { kind: 'RoleBinding', name, path: at(RBAC_API, 'rolebindings', name) },
  ]
  return [
    { kind: 'Deployment', name: `${base}-controller`, path: at('/apis/apps/v1', 'deployments', `${base}-controller`) },
    {
      kind: 'Service',
      name: `${base}-controller-service`,
      path: at('/api/v1', 'services', `${base}-controller-service`),
    },
    { kind: 'ServiceAccount', name: base, path: at('/api/v1', 'serviceaccounts', base) },
    ...rbac(base),
    ...rbac(`${base}-secret`),
    ...[`${base}-configmap`, `${base}-jsonschema-configmap`].map((name) => ({
      kind: 'ConfigMap',
      name,
      path: at('/api/v1', 'configmaps', name),
    })),
    { kind: 'ClusterRoleBinding', name: base, path: `${RBAC_API}/clusterrolebindings/${base}`, clusterWide: true },
    { kind: 'ClusterRole', name: base, path: `${RBAC_API}/clusterroles/${base}`, clusterWide: true },
  ]
}

/** A bundle base for a component whose definition is gone: its kind's plural as core-provider names it, and its version. */
export function bundleBaseFor(plural: string, version: string): string {
  return `${plural}-${dashed(version)}`
}

/**
 * The cluster-wide half of a cdc bundle (ClusterRole/ClusterRoleBinding `<base>`) is ours only when the
 * binding grants it to the bundle's ServiceAccount in our namespace: another platform's bundle of the same
 * kind and version carries the same name.
 */
export function bindsOurServiceAccount(
  binding: { subjects?: { kind: string; name: string; namespace?: string }[] } | null,
  base: string,
  namespace: string,
): boolean {
  return (binding?.subjects ?? []).some(
    (s) => s.kind === 'ServiceAccount' && s.name === base && s.namespace === namespace,
  )
}
