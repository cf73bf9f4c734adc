// A small REST client and list+watch cache for the simulated controllers. It talks to kube-apiserver
// with the sandbox's admin certificate, like an in-cluster controller with a cluster-admin role would.
import { Agent, request } from 'node:https'
import { readFileSync } from 'node:fs'

export interface KObject {
  apiVersion?: string
  kind?: string
  metadata: {
    name: string
    namespace?: string
    uid?: string
    generation?: number
    resourceVersion?: string
    creationTimestamp?: string
    deletionTimestamp?: string
    labels?: Record<string, string>
    annotations?: Record<string, string>
    finalizers?: string[]
    ownerReferences?: unknown[]
  }
  spec?: Record<string, unknown>
  status?: Record<string, unknown>
  [key: string]: unknown
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    what: string,
  ) {
    super(`${what}: HTTP ${status}: ${parseMessage(body)}`)
  }
}

function parseMessage(body: string): string {
  try {
    return (JSON.parse(body) as { message?: string }).message ?? body
  } catch {
    return body
  }
}

export interface RestConfig {
  server: string
  ca: string
  cert: string
  key: string
  /** Act as this user (Impersonate-User/-Group): a hook Job's steps run with its ServiceAccount's rights. */
  impersonate?: { user: string; groups: string[] }
}

export class Rest {
  private agent: Agent
  // Watches hold their connection for minutes: they get their own pool, so they can never starve requests.
  private watchAgent: Agent
  constructor(
    private cfg: RestConfig,
    agents?: { agent: Agent; watchAgent: Agent },
  ) {
    const tls = { ca: readFileSync(cfg.ca), cert: readFileSync(cfg.cert), key: readFileSync(cfg.key) }
    this.agent = agents?.agent ?? new Agent({ keepAlive: true, maxSockets: 32, ...tls })
    this.watchAgent = agents?.watchAgent ?? new Agent({ keepAlive: false, ...tls })
  }

  /** The same connection, acting as a ServiceAccount: what it may not do is refused as it would be in its pod. */
  asServiceAccount(namespace: string, name: string): Rest {
    const impersonate = {
      user: `system:serviceaccount:${namespace}:${name}`,
      groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
    }
    return new Rest({ ...this.cfg, impersonate }, { agent: this.agent, watchAgent: this.watchAgent })
  }

  private identity(): Record<string, string | string[]> {
    const imp = this.cfg.impersonate
    return imp ? { 'Impersonate-User': imp.user, 'Impersonate-Group': imp.groups } : {}
  }

  raw(
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
    timeoutMs = 30_000,
  ): Promise<{ status: number; body: string }> {
    const payload = body === undefined ? undefined : JSON.stringify(body)
    return new Promise((resolve, reject) => {
      const req = request(
        this.cfg.server + path,
        {
          method,
          agent: this.agent,
          timeout: timeoutMs,
          // An explicit length: Node sends a DELETE's body without one (no chunked encoding for DELETE), so the
          // server would ignore it and read it as the start of the next request on the connection.
          headers: {
            accept: 'application/json',
            ...this.identity(),
            ...(payload ? { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) } : {}),
          },
        },
        (res) => {
          let text = ''
          res.setEncoding('utf8')
          res.on('data', (c: string) => {
            text += c
          })
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
        },
      )
      req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)))
      req.on('error', reject)
      req.end(payload)
    })
  }

  private async call<T>(method: string, path: string, body?: unknown, contentType?: string): Promise<T> {
    const res = await this.raw(method, path, body, contentType)
    if (res.status >= 400) throw new ApiError(res.status, res.body, `${method} ${path}`)
    return (res.body ? JSON.parse(res.body) : {}) as T
  }

  get<T = KObject>(path: string): Promise<T> {
    return this.call<T>('GET', path)
  }
  async getOrNull<T = KObject>(path: string): Promise<T | null> {
    try {
      return await this.get<T>(path)
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return null
      throw err
    }
  }
  async list<T = KObject>(path: string, labelSelector?: string): Promise<T[]> {
    const q = labelSelector ? `?labelSelector=${encodeURIComponent(labelSelector)}` : ''
    return (await this.call<{ items: T[] }>('GET', path + q)).items
  }
  create<T = KObject>(path: string, body: unknown): Promise<T> {
    return this.call<T>('POST', path, body)
  }
  async createOrIgnore(path: string, body: unknown): Promise<void> {
    try {
      await this.create(path, body)
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 409)) throw err
    }
  }
  /** Creates the object at path/name, or replaces the one there (a restarted controller's own configuration). */
  async createOrReplace(
    path: string,
    body: { metadata: { name: string; [k: string]: unknown }; [k: string]: unknown },
  ): Promise<void> {
    const existing = await this.getOrNull(`${path}/${body.metadata.name}`)
    if (existing)
      await this.put(`${path}/${body.metadata.name}`, {
        ...body,
        metadata: { ...body.metadata, resourceVersion: existing.metadata.resourceVersion },
      })
    else await this.create(path, body)
  }
  put<T = KObject>(path: string, body: unknown): Promise<T> {
    return this.call<T>('PUT', path, body)
  }
  mergePatch<T = KObject>(path: string, body: unknown): Promise<T> {
    return this.call<T>('PATCH', path, body, 'application/merge-patch+json')
  }
  jsonPatch<T = KObject>(path: string, ops: unknown[]): Promise<T> {
    return this.call<T>('PATCH', path, ops, 'application/json-patch+json')
  }
  async delete(path: string, body?: unknown): Promise<void> {
    const res = await this.raw('DELETE', path, body)
    if (res.status >= 400 && res.status !== 404) throw new ApiError(res.status, res.body, `DELETE ${path}`)
  }

  /** Streams watch events until the connection ends; resolves with the last resourceVersion seen. */
  watch(
    path: string,
    resourceVersion: string,
    onEvent: (type: string, obj: KObject) => void,
    signal: AbortSignal,
  ): Promise<string> {
    let rv = resourceVersion
    return new Promise((resolve) => {
      const sep = path.includes('?') ? '&' : '?'
      const req = request(
        `${this.cfg.server}${path}${sep}watch=1&allowWatchBookmarks=true&resourceVersion=${rv}&timeoutSeconds=300`,
        {
          agent: this.watchAgent,
          signal,
          headers: { accept: 'application/json' },
        },
        (res) => {
          if (res.statusCode !== 200) {
            res.resume()
            resolve('')
            return
          }
          let buf = ''
          res.setEncoding('utf8')
          res.on('data', (chunk: string) => {
            buf += chunk
            let nl = buf.indexOf('\n')
            while (nl >= 0) {
              const line = buf.slice(0, nl)
              buf = buf.slice(nl + 1)
              nl = buf.indexOf('\n')
              if (!line.trim()) continue
              const ev = JSON.parse(line) as { type: string; object: KObject }
              if (ev.type === 'ERROR') {
                // 410 Gone: our resourceVersion is too old; relist.
                rv = ''
                continue
              }
              rv = ev.object.metadata.resourceVersion ?? rv
              if (ev.type !== 'BOOKMARK') onEvent(ev.type, ev.object)
            }
          })
          res.on('end', () => resolve(rv))
          res.on('error', () => resolve(rv))
        },
      )
      req.on('error', () => resolve(rv))
      req.end()
    })
  }
}

export type CacheEvent = 'add' | 'update' | 'delete'

/**
 * A list+watch cache of one resource path, like client-go's informer: it relists after any watch
 * failure (an API restart, a resource that does not exist yet) and reports add/update/delete.
 */
export class Informer {
  readonly items = new Map<string, KObject>()
  private abort = new AbortController()
  private synced = false
  constructor(
    private rest: Rest,
    readonly path: string,
    private handler: (ev: CacheEvent, obj: KObject, old?: KObject) => void,
  ) {}

  static key(obj: KObject): string {
    return obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : obj.metadata.name
  }

  get hasSynced(): boolean {
    return this.synced
  }

  start(): void {
    void this.loop()
  }
  stop(): void {
    this.abort.abort()
  }

  private async loop(): Promise<void> {
    while (!this.abort.signal.aborted) {
      let rv = ''
      try {
        const list = await this.rest.get<{ items: KObject[]; metadata: { resourceVersion: string } }>(this.path)
        rv = list.metadata.resourceVersion
        const seen = new Set<string>()
        for (const obj of list.items) {
          const key = Informer.key(obj)
          seen.add(key)
          const old = this.items.get(key)
          this.items.set(key, obj)
          if (!old) this.handler('add', obj)
          else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) this.handler('update', obj, old)
        }
        for (const [key, old] of this.items) {
          if (!seen.has(key)) {
            this.items.delete(key)
            this.handler('delete', old)
          }
        }
        this.synced = true
      } catch {
        await new Promise((r) => setTimeout(r, 1000))
        continue
      }
      while (rv && !this.abort.signal.aborted) {
        const began = Date.now()
        rv = await this.rest.watch(
          this.path,
          rv,
          (type, obj) => {
            const key = Informer.key(obj)
            const old = this.items.get(key)
            if (type === 'DELETED') {
              this.items.delete(key)
              this.handler('delete', obj)
            } else {
              this.items.set(key, obj)
              this.handler(old ? 'update' : 'add', obj, old)
            }
          },
          this.abort.signal,
        )
        // A watch that ends at once means the API is away: back off instead of spinning.
        if (Date.now() - began < 1000) await new Promise((r) => setTimeout(r, 500))
      }
      if (!this.abort.signal.aborted) await new Promise((r) => setTimeout(r, 200))
    }
  }
}
