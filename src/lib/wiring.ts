// Whether the consumer (the frontend) is wired to its peers. The installer chart writes the consumer's
// config.<KEY> = http://<peer LoadBalancer .ip>:<port> for every enabled peer's configKeys, from LoadBalancer
// Services only and their .ip only, and omits a key until that IP exists (contract section 1). So a portal is
// reachable in a browser only when every key is there; NodePort and hostname-only load balancers are never
// wired by the chart, whatever the wait. Pure.
import type { Component } from './components.js'
import type { KObj } from './state.js'

export interface WiringGap {
  key: string
  peer: string
  why: string
  /** The chart writes it at its next render (the IP exists): a nudge helps. */
  renderable: boolean
}

export interface Wiring {
  /** Keys that will come: an IP still pending, or a render still due. */
  pending: WiringGap[]
  /** Keys the chart never writes with this exposure. */
  never: WiringGap[]
}

interface Ingress { ip?: string; hostname?: string }

/** The Service a component is exposed through (matched by svcMatch, as the chart and the endpoints do). */
export function serviceOf(c: Component, services: KObj[]): KObj | undefined {
  return services.find((s) => s.metadata.name.includes(c.svcMatch ?? c.name))
}

export function consumerWiring(components: Component[], enabled: (c: Component) => boolean, consumer: KObj | undefined, services: KObj[]): Wiring {
  const config = ((consumer?.spec as { config?: Record<string, string> } | undefined)?.config) ?? {}
  const out: Wiring = { pending: [], never: [] }
  for (const peer of components) {
    if (peer.consumer || !enabled(peer) || !peer.configKeys?.length) continue
    const svc = serviceOf(peer, services)
    const type = (svc?.spec as { type?: string } | undefined)?.type
    const ingress = ((svc?.status as { loadBalancer?: { ingress?: Ingress[] } } | undefined)?.loadBalancer?.ingress ?? [])[0]
    const port = ((svc?.spec as { ports?: { port: number }[] } | undefined)?.ports ?? [])[0]?.port
    for (const key of peer.configKeys) {
      const gap = (why: string, renderable = false): WiringGap => ({ key, peer: peer.name, why, renderable })
      if (!svc) out.pending.push(gap(`${peer.name} has no Service yet`))
      else if (type !== 'LoadBalancer') out.never.push(gap(`${peer.name} is exposed as ${type ?? 'ClusterIP'}; the chart wires LoadBalancer IPs only`))
      else if (!ingress) out.pending.push(gap(`waiting for the LoadBalancer IP of ${peer.name}`))
      else if (!ingress.ip) out.never.push(gap(`${peer.name}'s load balancer has a hostname only (${ingress.hostname}); the chart wires IPs only`))
      else if (config[key] !== `http://${ingress.ip}:${port}`) out.pending.push(gap(`${key} not rendered yet (${peer.name} is at ${ingress.ip})`, true))
    }
  }
  return out
}

/** What a user does about keys the chart never writes. */
export function unwiredAdvice(consumer: string, never: WiringGap[]): string {
  const keys = never.map((g) => g.key).join(', ')
  return `the portal is not wired: the chart sets ${consumer}'s ${keys} from LoadBalancer IPs only (${never[0]!.why}). ` +
    `Re-install with --exposure LoadBalancer on a cluster that gives load balancers IPs, or set componentValues.${consumer}.config.<KEY> to URLs a browser reaches`
}
