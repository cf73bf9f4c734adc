// Permission preflight: SelfSubjectAccessReviews for every kind of write a command will make, so a user
// without the rights learns it before anything changes.
import type { Cluster } from './cluster.js'
import { apiFailure } from './cluster.js'
import { ExitCode, UserError } from '../platform/errors.js'

export interface Access {
  verb: string
  group: string
  resource: string
  namespace?: string
}

export const INSTALL_ACCESS = (ns: string): Access[] => [
  { verb: 'create', group: '', resource: 'namespaces' },
  { verb: 'create', group: 'apiextensions.k8s.io', resource: 'customresourcedefinitions' },
  { verb: 'create', group: 'rbac.authorization.k8s.io', resource: 'clusterrolebindings' },
  { verb: 'create', group: 'apps', resource: 'deployments', namespace: ns },
  { verb: 'patch', group: 'apps', resource: 'deployments', namespace: ns },
  { verb: 'create', group: '', resource: 'secrets', namespace: ns },
  { verb: 'create', group: '', resource: 'configmaps', namespace: ns },
  { verb: 'create', group: 'core.krateo.io', resource: 'compositiondefinitions', namespace: ns },
  { verb: 'patch', group: 'core.krateo.io', resource: 'compositiondefinitions', namespace: ns },
  { verb: 'create', group: 'composition.krateo.io', resource: 'installers', namespace: ns },
  { verb: 'patch', group: 'composition.krateo.io', resource: 'installers', namespace: ns },
  // What the preflight reads: helm's release records, and the ClusterRoles that prove which release is the platform's.
  { verb: 'list', group: '', resource: 'secrets', namespace: ns },
  { verb: 'list', group: 'rbac.authorization.k8s.io', resource: 'clusterroles' },
]

const describe = (a: Access) =>
  `${a.verb} ${a.resource}${a.group ? '.' + a.group : ''}${a.namespace ? ` in ${a.namespace}` : ''}`

export async function checkAccess(cluster: Cluster, wanted: Access[]): Promise<void> {
  let denied: Access[]
  try {
    const results = await Promise.all(
      wanted.map(async (a) => {
        const review = await cluster.authz.createSelfSubjectAccessReview({
          body: {
            spec: {
              resourceAttributes: { verb: a.verb, group: a.group, resource: a.resource, namespace: a.namespace },
            },
          },
        })
        return review.status?.allowed ? null : a
      }),
    )
    denied = results.filter((a): a is Access => a !== null)
  } catch (err) {
    throw apiFailure(err, cluster, 'check permissions')
  }
  if (denied.length) {
    throw new UserError(
      `missing permissions for context "${cluster.context}": ${denied.map(describe).join(', ')}`,
      ExitCode.Permission,
      'run as a user with cluster-admin (the install creates CRDs and cluster-wide RBAC)',
    )
  }
}

/** What uninstall deletes and writes, asked before its first write (with --purge: namespaces and PVCs too). */
export const UNINSTALL_ACCESS = (ns: string, recordNamespace: string, purge: boolean): Access[] => [
  { verb: 'delete', group: 'composition.krateo.io', resource: 'installers', namespace: ns },
  { verb: 'delete', group: 'core.krateo.io', resource: 'compositiondefinitions', namespace: ns },
  { verb: 'delete', group: 'admissionregistration.k8s.io', resource: 'mutatingwebhookconfigurations' },
  { verb: 'delete', group: 'apiextensions.k8s.io', resource: 'customresourcedefinitions' },
  { verb: 'create', group: 'coordination.k8s.io', resource: 'leases', namespace: ns },
  // The teardown record lives where only cluster admins write.
  { verb: 'create', group: '', resource: 'configmaps', namespace: recordNamespace },
  ...(purge
    ? [
        { verb: 'delete', group: '', resource: 'namespaces' },
        { verb: 'delete', group: '', resource: 'persistentvolumeclaims', namespace: ns },
      ]
    : []),
]
