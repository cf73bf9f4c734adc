// Gives each LoadBalancer Service an ingress IP from the documentation range 198.51.100.0/24, as a cloud
// controller would. The address is only written into status; nothing ever connects to it.
import { CoreV1Api, KubeConfig, makeInformer, type V1Service } from '@kubernetes/client-node'

const RANGE_PREFIX = '198.51.100.'

export function nextFreeIP(taken: Set<string>): string | undefined {
  for (let host = 10; host < 255; host++) {
    const ip = RANGE_PREFIX + host
    if (!taken.has(ip)) return ip
  }
  return undefined
}

/** Cloud behaviours the tests can ask for: IPs that take a while, load balancers with a hostname only (EKS). */
export interface LoadBalancerKnobs {
  delaySeconds: number
  hostnameOnly: boolean
}

export function startLoadBalancerController(
  kc: KubeConfig,
  log: (m: string) => void,
  knobs: () => LoadBalancerKnobs = () => ({ delaySeconds: 0, hostnameOnly: false }),
): () => void {
  const core = kc.makeApiClient(CoreV1Api)
  const informer = makeInformer(kc, '/api/v1/services', () => core.listServiceForAllNamespaces())
  // Addresses handed out but not written yet (a delayed load balancer): never given twice.
  const pending = new Map<string, string>()

  const assigned = (svc: V1Service) =>
    svc.status?.loadBalancer?.ingress?.map((i) => i.ip ?? i.hostname ?? '').filter(Boolean) ?? []

  const reconcile = async (svc: V1Service) => {
    const key = `${svc.metadata?.namespace}/${svc.metadata?.name}`
    if (svc.spec?.type !== 'LoadBalancer' || assigned(svc).length > 0 || pending.has(key)) return
    const taken = new Set([...informer.list().flatMap(assigned), ...pending.values()])
    const ip = nextFreeIP(taken)
    if (!ip) return log(`no free LoadBalancer IP left for ${key}`)
    pending.set(key, ip)
    const { delaySeconds, hostnameOnly } = knobs()
    if (delaySeconds > 0) await new Promise((r) => setTimeout(r, delaySeconds * 1000))
    try {
      const fresh = await core.readNamespacedServiceStatus({
        name: svc.metadata!.name!,
        namespace: svc.metadata!.namespace!,
      })
      if (fresh.spec?.type !== 'LoadBalancer' || assigned(fresh).length > 0) return
      // A hostname under .invalid (RFC 2606): shaped like an ELB name, never resolvable.
      const ingress = hostnameOnly
        ? { hostname: `${fresh.metadata!.name}-${ip.split('.')[3]}.elb.sandbox.invalid` }
        : { ip, ipMode: 'VIP' }
      fresh.status = { ...fresh.status, loadBalancer: { ingress: [ingress] } }
      await core.replaceNamespacedServiceStatus({
        name: fresh.metadata!.name!,
        namespace: fresh.metadata!.namespace!,
        body: fresh,
      })
      log(`LoadBalancer ${key} -> ${ingress.hostname ?? ip}`)
    } catch (err) {
      log(`LoadBalancer ${key}: ${(err as Error).message.split('\n')[0]}`)
    } finally {
      pending.delete(key)
    }
  }

  informer.on('add', (svc) => void reconcile(svc))
  informer.on('update', (svc) => void reconcile(svc))
  // The informer stops on a watch error (an API restart, say); start it again after a pause.
  informer.on('error', () => setTimeout(() => void informer.start().catch(() => undefined), 1000))
  void informer.start().catch(() => setTimeout(() => void informer.start().catch(() => undefined), 1000))
  return () => void informer.stop()
}
