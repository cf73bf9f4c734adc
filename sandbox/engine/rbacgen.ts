// The cdc's own rights (composition-dynamic-controller internal/rbacgen/rbacgen.go, internal/composition
// composition.go before every helm run): chart-inspector lists the objects the chart renders with the
// Composition's values (hooks are not scanned), and the cdc grants its own ServiceAccount `*` on each kind it
// found: one ClusterRole/ClusterRoleBinding for the cluster-scoped kinds, one Role/RoleBinding per namespace
// for the rest, all named after the release. Everything else the chart does (its lookups, its hook Jobs) must
// come from the bundle's static RBAC (core-provider) or from RBAC the chart's own bootstrap release grants.
import { parseAllDocuments } from 'yaml'
import { ApiError, type KObject, type Rest } from './rest.js'
import { pluralFromKind } from './naming.js'

export interface PolicyRule {
  apiGroups: string[]
  resources: string[]
  verbs: string[]
}
export interface GeneratedRbac {
  cluster: PolicyRule[]
  namespaced: Record<string, PolicyRule[]>
}

/** Kinds the fixture charts render that are not namespaced. */
export const CLUSTER_SCOPED = new Set([
  'CustomResourceDefinition',
  'ClusterRole',
  'ClusterRoleBinding',
  'Namespace',
  'MutatingWebhookConfiguration',
  'ValidatingWebhookConfiguration',
  'PersistentVolume',
  'StorageClass',
])

/** What rbacgen grants for a rendered chart (helm template output). Pure. */
export function generatedRbac(manifest: string, namespace: string): GeneratedRbac {
  const out: GeneratedRbac = { cluster: [], namespaced: {} }
  const seen = new Set<string>()
  for (const doc of parseAllDocuments(manifest)) {
    const o = doc.toJS() as KObject | null
    if (!o?.kind || !o.apiVersion) continue
    // chart-inspector does not scan hooks (the real installer chart grants its hooks' rights by hand).
    if (o.metadata?.annotations?.['helm.sh/hook']) continue
    const group = o.apiVersion.includes('/') ? o.apiVersion.split('/')[0]! : ''
    const rule = { apiGroups: [group], resources: [pluralFromKind(o.kind)], verbs: ['*'] }
    const ns = CLUSTER_SCOPED.has(o.kind) ? '' : (o.metadata.namespace ?? namespace)
    const key = `${ns}/${group}/${rule.resources[0]}`
    if (seen.has(key)) continue
    seen.add(key)
    if (ns) (out.namespaced[ns] ??= []).push(rule)
    else out.cluster.push(rule)
  }
  return out
}

const RBAC_API = '/apis/rbac.authorization.k8s.io/v1'

async function upsert(
  rest: Rest,
  collection: string,
  body: { metadata: { name: string; namespace?: string } } & Record<string, unknown>,
): Promise<void> {
  try {
    await rest.create(collection, body)
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 409)) throw err
    await rest.mergePatch(`${collection}/${body.metadata.name}`, body)
  }
}

/**
 * Applies what rbacgen generated, as the cdc does (with its own ServiceAccount, which core-provider's static
 * ClusterRole lets write RBAC). The sandbox names the cluster-scoped pair after the namespace too, so two
 * platforms side by side do not take each other's binding (the real names are the release's alone).
 */
export async function applyRbac(
  rest: Rest,
  base: string,
  sa: { name: string; namespace: string },
  rbac: GeneratedRbac,
): Promise<void> {
  const subjects = [{ kind: 'ServiceAccount', name: sa.name, namespace: sa.namespace }]
  const clusterName = `${base}-${sa.namespace}`
  await upsert(rest, `${RBAC_API}/clusterroles`, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: clusterName },
    rules: rbac.cluster,
  })
  await upsert(rest, `${RBAC_API}/clusterrolebindings`, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: clusterName },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterName },
    subjects,
  })
  for (const [ns, rules] of Object.entries(rbac.namespaced)) {
    await upsert(rest, `${RBAC_API}/namespaces/${ns}/roles`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: base, namespace: ns },
      rules,
    })
    await upsert(rest, `${RBAC_API}/namespaces/${ns}/rolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: base, namespace: ns },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: base },
      subjects,
    })
  }
}

/** After helm uninstall the cdc removes what it generated (rbac.UninstallRBAC). */
export async function removeRbac(rest: Rest, base: string, saNamespace: string, rbac: GeneratedRbac): Promise<void> {
  const clusterName = `${base}-${saNamespace}`
  await rest.delete(`${RBAC_API}/clusterrolebindings/${clusterName}`)
  await rest.delete(`${RBAC_API}/clusterroles/${clusterName}`)
  for (const ns of Object.keys(rbac.namespaced)) {
    await rest.delete(`${RBAC_API}/namespaces/${ns}/rolebindings/${base}`)
    await rest.delete(`${RBAC_API}/namespaces/${ns}/roles/${base}`)
  }
}
