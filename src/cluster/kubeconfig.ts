// Loading the kubeconfig exactly as kubectl does: --kubeconfig alone when given; else every file of
// $KUBECONFIG (missing ones skipped), merged so that the first file to name a cluster, user or context wins
// and the first current-context set wins; else ~/.kube/config; else the in-cluster config of a pod. No
// kubeconfig at all is said so, not guessed around.
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import type { ClientRequest } from 'node:http'
import { Agent, type RequestOptions as HttpsRequestOptions } from 'node:https'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { createSecureContext } from 'node:tls'
import { homedir } from 'node:os'
import { delimiter, join } from 'node:path'
import { KubeConfig, type RequestContext } from '@kubernetes/client-node'
import { ExitCode, UserError } from '../platform/errors.js'

export interface KubeconfigSource {
  kubeconfig?: string
  env?: string
  home?: string
  inCluster?: boolean
}

/** The files kubectl would read, in order, and which of them exist. Pure but for existsSync. */
export function kubeconfigFiles(src: KubeconfigSource): { files: string[]; from: string } {
  if (src.kubeconfig) return { files: [src.kubeconfig], from: '--kubeconfig' }
  if (src.env) return { files: src.env.split(delimiter).filter(Boolean), from: '$KUBECONFIG' }
  return { files: [join(src.home ?? homedir(), '.kube', 'config')], from: '~/.kube/config' }
}

const agents = new Map<string, Agent>()

/**
 * The keep-alive agent for the credentials of a per-request agent client-node made. client-node 1.x gives every
 * request a new agent, so every request paid a TLS handshake and parsed the CA and client key again: most of the
 * CLI's CPU in a long wait. Requests with the same credentials (an exec plugin may hand out new ones) share one.
 */
export function pooledAgent(agent: Agent): Agent {
  const o = agent.options
  const key = createHash('sha256')
    .update(JSON.stringify([o.servername, o.rejectUnauthorized, o.passphrase]))
    .update(String(o.ca ?? ''))
    .update(String(o.cert ?? ''))
    .update(String(o.key ?? ''))
    .update(String(o.pfx ?? ''))
    .digest('hex')
  let pooled = agents.get(key)
  // One TLS context for every connection, too (a watch holds its own connection).
  if (!pooled) agents.set(key, (pooled = new KeepAliveAgent({ ...o, secureContext: createSecureContext(o) })))
  return pooled
}

/** How long a connection waits for the next request: far below an API server's idle close (kube-apiserver: 90 s). */
const IDLE_CONNECTION_MS = 5_000

/**
 * Keeps a connection between requests for a few seconds only, so a request never goes out on a connection the
 * server has just closed for idleness (it would fail with "socket hang up"); an agent's own timeout would also
 * apply to a watch waiting for its next event.
 */
class KeepAliveAgent extends Agent {
  constructor(options: ConstructorParameters<typeof Agent>[0]) {
    super({ ...options, keepAlive: true })
  }

  override keepSocketAlive(socket: Duplex): boolean {
    const kept = (super.keepSocketAlive as (s: Duplex) => boolean)(socket)
    // A free connection that times out is closed by the agent itself.
    if (kept) (socket as Socket).setTimeout(IDLE_CONNECTION_MS)
    return kept
  }

  override reuseSocket(socket: Duplex, request: ClientRequest): void {
    ;(socket as Socket).setTimeout(0)
    super.reuseSocket(socket, request)
  }
}

/** A KubeConfig whose generated API clients share keep-alive connections (see pooledAgent); a proxy keeps its own. */
export class PooledKubeConfig extends KubeConfig {
  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context)
    const agent = context.getAgent()
    // A proxy agent is an https.Agent too; it keeps its own connections.
    if (agent instanceof Agent && !this.getCurrentCluster()?.proxyUrl) context.setAgent(pooledAgent(agent))
  }

  /** What a Watch connects with. */
  override async applyToFetchOptions(
    opts: HttpsRequestOptions,
  ): Promise<Awaited<ReturnType<KubeConfig['applyToFetchOptions']>>> {
    const init = await super.applyToFetchOptions(opts)
    if (init.agent instanceof Agent && !this.getCurrentCluster()?.proxyUrl) init.agent = pooledAgent(init.agent)
    return init
  }
}

export function loadKubeConfig(
  src: KubeconfigSource = { env: process.env.KUBECONFIG, inCluster: !!process.env.KUBERNETES_SERVICE_HOST },
): KubeConfig {
  const { files, from } = kubeconfigFiles(src)
  const existing = files.filter((f) => existsSync(f))
  if (src.kubeconfig && !existing.length)
    throw new UserError(
      `kubeconfig ${src.kubeconfig} does not exist`,
      ExitCode.Cluster,
      'pass an existing file with --kubeconfig',
    )
  const kc = new PooledKubeConfig()
  if (!existing.length) {
    if (src.inCluster) {
      kc.loadFromCluster()
      return kc
    }
    const where =
      from === '$KUBECONFIG'
        ? `none of the files in $KUBECONFIG exists (${files.join(', ')})`
        : 'no kubeconfig: $KUBECONFIG is not set and ~/.kube/config does not exist'
    throw new UserError(
      where,
      ExitCode.Cluster,
      'pass --kubeconfig, set KUBECONFIG, or run inside a pod with a ServiceAccount',
    )
  }
  const merged = {
    clusters: [] as KubeConfig['clusters'],
    users: [] as KubeConfig['users'],
    contexts: [] as KubeConfig['contexts'],
    currentContext: '',
  }
  for (const file of existing) {
    const part = new KubeConfig()
    try {
      part.loadFromFile(file)
    } catch (err) {
      throw new UserError(
        `cannot read kubeconfig ${file}: ${(err as Error).message.split('\n')[0]}`,
        ExitCode.Cluster,
        'fix the file or pass another with --kubeconfig',
      )
    }
    const add = <T extends { name: string }>(into: T[], items: T[]) => {
      for (const i of items) if (!into.some((x) => x.name === i.name)) into.push(i)
    }
    add(merged.clusters, part.clusters)
    add(merged.users, part.users)
    add(merged.contexts, part.contexts)
    if (!merged.currentContext && part.currentContext) merged.currentContext = part.currentContext
  }
  kc.loadFromOptions(merged)
  return kc
}
