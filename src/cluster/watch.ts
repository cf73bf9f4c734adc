// A watched collection, as an informer does it: a list (so `synced` says when the collection is complete,
// even when it is empty), then one long-lived watch from the list's resourceVersion, resumed after a
// dropped connection (an API server restart, say) and re-listed when that version is too old. Failures
// back off (1 s doubling to 30 s; a server that cannot be reached is tried every second) and are kept in
// `failure`, so a wait can say why it sees nothing (expired credentials, RBAC) instead of showing a frozen
// view; a watch that ends as soon as it opens (a proxy that cannot stream) counts as a failure, and a silent
// connection is dropped and reopened.
import { Watch, type KubeConfig } from '@kubernetes/client-node'
import type { KObj } from '../platform/kobj.js'
import { isUnreachable, readFailure } from './cluster.js'

/** Lists a path (with its query); null when the resource does not exist (yet). */
export type Lister = (
  pathWithQuery: string,
) => Promise<{ metadata?: { resourceVersion?: string }; items?: KObj[] } | null>

export class WatchedCollection {
  readonly items = new Map<string, KObj>()
  /** The first list has been read: items holds the whole collection (as of then). */
  synced = false
  /**
   * The last list answered 404: the collection itself is not served (a CRD not there yet, or gone, or a version
   * no longer served). Empty then says nothing about the objects.
   */
  missing = false
  private rv = ''
  private ctrl: AbortController | undefined
  private stopped = false
  private retry: NodeJS.Timeout | undefined
  private idle: NodeJS.Timeout | undefined
  /** Consecutive failures of list or watch; 0 after any success. */
  failures = 0
  /** The last failure, while it lasts ("HTTP 403: ..."); null once a list or watch works again. */
  failure: string | null = null
  /** Since when the API server cannot be reached from here (ms since the epoch); null while it answers. */
  unreachableSince: number | null = null

  constructor(
    private watch: Watch,
    private list: Lister,
    readonly path: string,
    private onChange: () => void,
    private fieldSelector?: string,
  ) {}

  static key(obj: KObj): string {
    return obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : obj.metadata.name
  }

  start(): this {
    void this.connect()
    return this
  }

  stop(): void {
    this.stopped = true
    clearTimeout(this.retry)
    clearTimeout(this.idle)
    this.ctrl?.abort()
  }

  private again(ms: number): void {
    if (this.stopped) return
    clearTimeout(this.retry)
    this.retry = setTimeout(() => void this.connect(), ms)
  }

  private failed(err: unknown): void {
    this.failures++
    this.failure = readFailure(err)
    if (isUnreachable(err)) this.unreachableSince ??= Date.now()
    // A server that is down or restarting is tried every second, so a run resumes as soon as it is back (a
    // refused connection costs it nothing); an answer that refuses (403, 500) backs off.
    this.again(isUnreachable(err) ? 1000 : Math.min(30_000, 1000 * 2 ** Math.min(this.failures - 1, 5)))
  }

  private worked(): void {
    this.failures = 0
    this.failure = null
    this.unreachableSince = null
  }

  /** No event nor bookmark for longer than the server's own timeout: the connection is dead; reopen it. */
  private armIdle(): void {
    clearTimeout(this.idle)
    this.idle = setTimeout(
      () => {
        this.ctrl?.abort()
        this.again(0)
      },
      (WATCH_TIMEOUT_SECONDS + 60) * 1000,
    )
    this.idle.unref()
  }

  private async relist(): Promise<boolean> {
    const page = await this.list(
      this.path + (this.fieldSelector ? `?fieldSelector=${encodeURIComponent(this.fieldSelector)}` : ''),
    )
    if (this.stopped) return false
    this.missing = !page
    this.items.clear()
    for (const obj of page?.items ?? []) this.items.set(WatchedCollection.key(obj), obj)
    this.rv = page?.metadata?.resourceVersion ?? ''
    this.synced = true
    this.onChange()
    return !!page
  }

  private async connect(): Promise<void> {
    if (this.stopped) return
    if (!this.rv) {
      try {
        // Not there yet (a CRD still to come): complete as empty; look again shortly.
        const found = await this.relist()
        this.worked()
        if (!found) return this.again(1000)
      } catch (err) {
        return this.failed(err)
      }
    }
    const query: Record<string, string | number | boolean> = {
      allowWatchBookmarks: true,
      timeoutSeconds: WATCH_TIMEOUT_SECONDS,
      ...(this.fieldSelector ? { fieldSelector: this.fieldSelector } : {}),
    }
    if (this.rv) query.resourceVersion = this.rv
    const opened = Date.now()
    let events = 0
    try {
      this.armIdle()
      const ctrl = await this.watch.watch(
        this.path,
        query as Record<string, string | boolean>,
        (type: string, obj: KObj & { code?: number }) => {
          events++
          this.armIdle()
          if (type === 'BOOKMARK') {
            this.rv = obj.metadata?.resourceVersion ?? this.rv
            return
          }
          if (type === 'ERROR') {
            // 410 Gone: our resourceVersion is too old; list again when the watch ends.
            this.rv = ''
            return
          }
          this.rv = (obj.metadata as { resourceVersion?: string }).resourceVersion ?? this.rv
          if (type === 'DELETED') this.items.delete(WatchedCollection.key(obj))
          else this.items.set(WatchedCollection.key(obj), obj)
          this.onChange()
        },
        (err: unknown) => {
          clearTimeout(this.idle)
          if (this.stopped) return
          if (err && (err as { statusCode?: number }).statusCode === 410) this.rv = '' // too old a version: list again
          if (err && (err as { name?: string }).name !== 'AbortError') return this.failed(err)
          // A watch the server ended at once, with nothing delivered, is a front end that cannot stream.
          if (!events && Date.now() - opened < 1000)
            return this.failed(new Error('the watch ended as soon as it opened'))
          this.worked()
          this.again(50)
        },
      )
      // stop() while the watch was being opened: it could not abort what did not exist yet.
      if (this.stopped) ctrl.abort()
      else this.ctrl = ctrl
    } catch (err) {
      clearTimeout(this.idle)
      this.failed(err)
    }
  }
}

/** The server closes a watch after this long; we reopen it from the last version seen. */
const WATCH_TIMEOUT_SECONDS = 300

export function newWatch(kc: KubeConfig): Watch {
  return new Watch(kc)
}

/**
 * One named object followed through a watch (a list, then a watch from its version, by field selector):
 * what the teardown waits on, instead of polling it.
 */
export class ObjectWatch {
  private coll: WatchedCollection
  private listeners = new Set<() => void>()

  constructor(
    watch: Watch,
    list: Lister,
    readonly collectionPath: string,
    readonly name: string,
  ) {
    this.coll = new WatchedCollection(
      watch,
      list,
      collectionPath,
      () => {
        for (const l of this.listeners) l()
      },
      `metadata.name=${name}`,
    ).start()
  }

  /**
   * The object; null when it does not exist; undefined until the first list has been read, and while the
   * collection is not served (see collectionMissing): a version no longer served is not an object gone (N13).
   */
  get current(): KObj | null | undefined {
    if (!this.coll.synced || this.coll.missing) return undefined
    return this.coll.items.values().next().value ?? null
  }

  /** The collection answered 404: whether the object is gone is for its CRD to say (servedCollection). */
  get collectionMissing(): boolean {
    return this.coll.synced && this.coll.missing
  }

  /** Calls fn on every change; returns the function that stops it. */
  onChange(fn: () => void): () => void {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  stop(): void {
    this.listeners.clear()
    this.coll.stop()
  }
}

/** Resolves after ms, or as soon as one of the watches sees a change. */
export function nap(watches: ObjectWatch[], ms: number): Promise<void> {
  return new Promise((resolve) => {
    const offs: (() => void)[] = []
    const done = () => {
      clearTimeout(timer)
      for (const off of offs) off()
      resolve()
    }
    const timer = setTimeout(done, ms)
    for (const w of watches) offs.push(w.onChange(done))
  })
}
