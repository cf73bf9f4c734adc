// Binds every PersistentVolumeClaim to a volume, as a cluster's storage provisioner would: the agent
// creates a PersistentVolume pre-bound to the claim (kube-controller-manager's binder completes the bind),
// so a StatefulSet's pods schedule; a volume whose claim is gone is deleted by the agent (nothing else could). The
// volume is a hostPath nothing writes to: kwok runs no containers.
import { CoreV1Api, KubeConfig, makeInformer, type V1PersistentVolumeClaim } from '@kubernetes/client-node'

const MANAGED = 'sandbox.krateo.io/provisioned'

export function startVolumeProvisioner(kc: KubeConfig, log: (m: string) => void): () => void {
  const core = kc.makeApiClient(CoreV1Api)
  const claims = makeInformer(kc, '/api/v1/persistentvolumeclaims', () =>
    core.listPersistentVolumeClaimForAllNamespaces(),
  )
  const provision = async (pvc: V1PersistentVolumeClaim) => {
    if (pvc.spec?.volumeName || pvc.metadata?.deletionTimestamp) return
    const name = `pv-${pvc.metadata!.uid}`
    try {
      await core.createPersistentVolume({
        body: {
          metadata: { name, labels: { [MANAGED]: 'true' } },
          spec: {
            capacity: { storage: pvc.spec?.resources?.requests?.storage ?? '1Gi' },
            accessModes: pvc.spec?.accessModes ?? ['ReadWriteOnce'],
            storageClassName: pvc.spec?.storageClassName ?? '',
            persistentVolumeReclaimPolicy: 'Retain',
            hostPath: { path: `/tmp/sandbox-volumes/${name}` },
            claimRef: { namespace: pvc.metadata!.namespace, name: pvc.metadata!.name, uid: pvc.metadata!.uid },
          },
        },
      })
      log(`PersistentVolumeClaim ${pvc.metadata!.namespace}/${pvc.metadata!.name} -> PersistentVolume ${name}`)
    } catch (err) {
      if ((err as { code?: number }).code !== 409)
        log(
          `PersistentVolumeClaim ${pvc.metadata!.namespace}/${pvc.metadata!.name}: ${(err as Error).message.split('\n')[0]}`,
        )
    }
  }
  const release = async (pvc: V1PersistentVolumeClaim) => {
    await core.deletePersistentVolume({ name: `pv-${pvc.metadata!.uid}` }).catch(() => undefined)
  }
  claims.on('add', (pvc) => void provision(pvc))
  claims.on('update', (pvc) => void provision(pvc))
  claims.on('delete', (pvc) => void release(pvc))
  claims.on('error', () => setTimeout(() => void claims.start().catch(() => undefined), 1000))
  void claims.start().catch(() => setTimeout(() => void claims.start().catch(() => undefined), 1000))
  return () => void claims.stop()
}
