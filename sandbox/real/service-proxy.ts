// How Services reach the real engine's processes. One HTTP proxy, listening twice:
// - on a Unix socket that kube-apiserver's egress selector (`cluster`, HTTPConnect) dials for every call to a
//   Service: core-provider's mutating and conversion webhooks arrive as `CONNECT <clusterIP>:<port>`;
// - on a loopback port the pods have as HTTP_PROXY: the cdc reaches chart-inspector by its *.svc name.
// A Service's port leads to its targetPort on a ready pod of the process node (127.0.0.1:<containerPort>: the
// processes share the host's network). A Service with no such pod is refused (502), as a Service without
// endpoints refuses connections.
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { connect, type Socket } from 'node:net'
import { rmSync } from 'node:fs'
import { Informer, type KObject, type Rest } from '../engine/rest.js'

interface ServicePort {
  name?: string
  port: number
  targetPort?: number | string
}
interface Target {
  host: string
  port: number
}

export class ServiceProxy {
  private services: Informer
  private servers: Server[] = []

  constructor(
    rest: Rest,
    private readyPods: () => KObject[],
    private log: (m: string) => void,
  ) {
    this.services = new Informer(rest, '/api/v1/services', () => undefined)
  }

  async listen(socketPath: string, port: number): Promise<void> {
    this.services.start()
    rmSync(socketPath, { force: true })
    for (const where of [socketPath, port]) {
      const server = createServer((req, res) => this.forward(req, res))
      // Clients (kube-apiserver, the pods) close idle connections themselves, later than Node's 5 s would.
      server.keepAliveTimeout = 120_000
      server.headersTimeout = 121_000
      server.on('connect', (req, socket: Socket, head) => this.tunnel(req, socket, head))
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        if (typeof where === 'number') server.listen(where, '127.0.0.1', resolve)
        else server.listen(where, resolve)
      })
      this.servers.push(server)
    }
  }

  /** `<ip or name>:<port>` of a Service -> the process that serves it, or why not. */
  resolve(hostPort: string): Target | string {
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(hostPort)
    if (!m) return `not host:port: ${hostPort}`
    const [, host, portText] = m
    const port = Number(portText)
    const byName = /^([a-z0-9-]+)\.([a-z0-9-]+)\.svc(\.cluster\.local)?\.?$/.exec(host!)
    let svc: KObject | undefined
    for (const s of this.services.items.values()) {
      const spec = s.spec as { clusterIP?: string }
      if (byName ? s.metadata.name === byName[1] && s.metadata.namespace === byName[2] : spec.clusterIP === host) {
        svc = s
        break
      }
    }
    if (!svc) return `no Service ${host}`
    const spec = svc.spec as { ports?: ServicePort[]; selector?: Record<string, string> }
    const sp = spec.ports?.find((p) => p.port === port)
    if (!sp) return `Service ${svc.metadata.namespace}/${svc.metadata.name} has no port ${port}`
    const selector = Object.entries(spec.selector ?? {})
    const pod = this.readyPods().find(
      (p) =>
        p.metadata.namespace === svc.metadata.namespace &&
        selector.length > 0 &&
        selector.every(([k, v]) => p.metadata.labels?.[k] === v),
    )
    if (!pod) return `Service ${svc.metadata.namespace}/${svc.metadata.name} has no ready process pod`
    const target = sp.targetPort ?? sp.port
    if (typeof target === 'number') return { host: '127.0.0.1', port: target }
    const containers = (pod.spec as { containers: { ports?: { name?: string; containerPort: number }[] }[] }).containers
    const named = containers.flatMap((c) => c.ports ?? []).find((p) => p.name === target)
    return named
      ? { host: '127.0.0.1', port: named.containerPort }
      : `pod ${pod.metadata.name} has no port named ${target}`
  }

  private tunnel(req: IncomingMessage, client: Socket, head: Buffer): void {
    const target = this.resolve(req.url ?? '')
    if (typeof target === 'string') {
      this.log(`service proxy: CONNECT ${req.url} refused: ${target}`)
      client.end(`HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\n\r\n${target}\n`)
      return
    }
    const upstream = connect(target.port, target.host, () => {
      client.write('HTTP/1.1 200 Connection established\r\n\r\n')
      if (head.length) upstream.write(head)
      upstream.pipe(client)
      client.pipe(upstream)
    })
    const close = () => {
      upstream.destroy()
      client.destroy()
    }
    upstream.on('error', (err) => {
      this.log(`service proxy: CONNECT ${req.url} -> ${target.host}:${target.port}: ${err.message}`)
      if (!client.destroyed) client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n')
    })
    client.on('error', close)
    upstream.on('close', () => client.destroy())
  }

  /** A plain-HTTP request in absolute form (`GET http://svc.ns.svc:8081/...`), as Go's http.Client sends to a proxy. */
  private forward(req: IncomingMessage, res: ServerResponse): void {
    let url: URL
    try {
      url = new URL(req.url ?? '')
    } catch {
      res.writeHead(400).end('absolute URL expected\n')
      return
    }
    const target = this.resolve(`${url.hostname}:${url.port || 80}`)
    if (typeof target === 'string') {
      this.log(`service proxy: ${req.method} ${req.url} refused: ${target}`)
      res.writeHead(502, { 'content-type': 'text/plain' }).end(`${target}\n`)
      return
    }
    const upstream = request(
      {
        host: target.host,
        port: target.port,
        method: req.method,
        path: `${url.pathname}${url.search}`,
        headers: req.headers,
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers)
        up.pipe(res)
      },
    )
    upstream.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502).end(`${err.message}\n`)
      else res.destroy()
    })
    req.pipe(upstream)
  }

  close(): void {
    this.services.stop()
    for (const s of this.servers) s.close()
  }
}
