// Whether the consumer (the frontend) is wired to its peers. The installer chart writes the consumer's
// config.<KEY> = http://<peer LoadBalancer .ip>:<port> for every enabled peer's configKeys, from LoadBalancer
// Services only and their .ip only, and omits a key until that IP exists (contract section 1). So a portal is
// reachable in a browser only when every key is there; NodePort and hostname-only load balancers are never
// wired by the chart, whatever the wait. Pure.
import type { Component } from './components.js'
import type { KObj } from './kobj.js'

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

interface Ingress {
  ip?: string
  hostname?: string
}

const byName = (a: KObj, b: KObj) => a.metadata.name.localeCompare(b.metadata.name)
const typeOf = (svc: KObj | undefined) => (svc?.spec as { type?: string } | undefined)?.type
const ingressOf = (svc: KObj | undefined): Ingress[] =>
  (svc?.status as { loadBalancer?: { ingress?: Ingress[] } } | undefined)?.loadBalancer?.ingress ?? []
const portOf = (svc: KObj | undefined) =>
  ((svc?.spec as { ports?: { port: number }[] } | undefined)?.ports ?? [])[0]?.port

/**
 * The Service a component is exposed through: one its release lists in status.managed, named after the
 * component (svcMatch). A name match alone is not enough: the cdc bundles (frontends-v0-24-0-controller-service)
 * and other releases' Services carry the same word, and a watch delivers them in any order.
 */
export function serviceOf(c: Component, services: KObj[], composition?: KObj): KObj | undefined {
  const match = c.svcMatch ?? c.name
  const managed = ((composition?.status?.managed as { resource?: string; name?: string }[] | undefined) ?? [])
    .filter((m) => m.resource === 'services')
    .map((m) => m.name)
  const candidates = services.filter((s) => s.metadata.name.includes(match)).sort(byName)
  if (managed.length) return candidates.find((s) => managed.includes(s.metadata.name))
  // No status.managed to go by (a cdc that has not reported yet): the exact name, else no guess.
  return candidates.find((s) => s.metadata.name === match || s.metadata.name === c.name)
}

/**
 * The address the chart writes for a peer, by the chart's own rule (inst.lbip): LoadBalancer Services whose
 * name contains svcMatch, in the API's name order, the last .ip found wins.
 */
export function chartPeerAddress(peer: Component, services: KObj[]): { ip: string; port: number | undefined } | null {
  let found: { ip: string; port: number | undefined } | null = null
  for (const svc of [...services].sort(byName)) {
    if (typeOf(svc) !== 'LoadBalancer' || !svc.metadata.name.includes(peer.svcMatch ?? peer.name)) continue
    for (const ing of ingressOf(svc)) if (ing.ip) found = { ip: ing.ip, port: portOf(svc) }
  }
  return found
}

export function consumerWiring(
  components: Component[],
  enabled: (c: Component) => boolean,
  consumer: KObj | undefined,
  services: KObj[],
  compositions: Map<string, KObj> = new Map(),
): Wiring {
  const config = (consumer?.spec as { config?: Record<string, string> } | undefined)?.config ?? {}
  const out: Wiring = { pending: [], never: [] }
  for (const peer of components) {
    if (peer.consumer || !enabled(peer) || !peer.configKeys?.length) continue
    const svc = serviceOf(peer, services, compositions.get(peer.name))
    const type = typeOf(svc)
    const ingress = ingressOf(svc)[0]
    const address = chartPeerAddress(peer, services)
    for (const key of peer.configKeys) {
      const gap = (why: string, renderable = false): WiringGap => ({ key, peer: peer.name, why, renderable })
      if (!svc) out.pending.push(gap(`${peer.name} has no Service yet`))
      else if (type !== 'LoadBalancer')
        out.never.push(gap(`${peer.name} is exposed as ${type ?? 'ClusterIP'}; the chart wires LoadBalancer IPs only`))
      else if (!address && ingress && !ingress.ip)
        out.never.push(
          gap(`${peer.name}'s load balancer has a hostname only (${ingress.hostname}); the chart wires IPs only`),
        )
      else if (!address) out.pending.push(gap(`waiting for the LoadBalancer IP of ${peer.name}`))
      else if (config[key] !== `http://${address.ip}:${address.port}`)
        out.pending.push(gap(`${key} not rendered yet (${peer.name} is at ${address.ip})`, true))
    }
  }
  return out
}

/** Why the portal cannot be used in a browser, and what a user does about it. */
export interface PortalGap {
  why: string
  hint: string
}

/** What a user does about keys the chart never writes. */
export function unwiredAdvice(consumer: string, never: WiringGap[]): PortalGap {
  const keys = never.map((g) => g.key).join(', ')
  return {
    why: `the portal is not wired: the chart sets ${consumer}'s ${keys} from LoadBalancer IPs only (${never[0]!.why})`,
    hint: `re-install with --exposure LoadBalancer on a cluster that gives load balancers IPs, or set componentValues.${consumer}.config.<KEY> to URLs a browser reaches`,
  }
}
