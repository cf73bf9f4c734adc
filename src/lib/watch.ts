// A watched collection: one long-lived watch per API path, resumed from the last resourceVersion after
// a dropped connection (an API server restart, say) and restarted from scratch when that is too old.
// A watch opened without a resourceVersion first replays every existing object, so no list is needed.
import { Watch, type KubeConfig } from '@kubernetes/client-node'
import type { KObj } from './state.js'

export class WatchedCollection {
  readonly items = new Map<string, KObj>()
  private rv = ''
  private ctrl: AbortController | undefined
  private stopped = false
  private retry: NodeJS.Timeout | undefined
  connected = false

  constructor(private watch: Watch, readonly path: string, private onChange: () => void, private fieldSelector?: string) {}

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
    this.ctrl?.abort()
  }

  private again(ms: number): void {
    if (this.stopped) return
    clearTimeout(this.retry)
    this.retry = setTimeout(() => void this.connect(), ms)
  }

  private async connect(): Promise<void> {
    if (this.stopped) return
    const query: Record<string, string | boolean> = { allowWatchBookmarks: true, ...(this.fieldSelector ? { fieldSelector: this.fieldSelector } : {}) }
    if (this.rv) query.resourceVersion = this.rv
    try {
      this.ctrl = await this.watch.watch(this.path, query, (type: string, obj: KObj & { code?: number }) => {
        this.connected = true
        if (type === 'BOOKMARK') {
          this.rv = obj.metadata?.resourceVersion ?? this.rv
          return
        }
        if (type === 'ERROR') {
          // 410 Gone: our resourceVersion is too old; replay everything.
          this.rv = ''
          this.items.clear()
          return
        }
        this.rv = (obj.metadata as { resourceVersion?: string }).resourceVersion ?? this.rv
        if (type === 'DELETED') this.items.delete(WatchedCollection.key(obj))
        else this.items.set(WatchedCollection.key(obj), obj)
        this.onChange()
      }, (err: unknown) => {
        this.connected = false
        this.again(err ? 1000 : 50)
      })
    } catch {
      this.connected = false
      this.again(1000)
    }
  }
}

export function newWatch(kc: KubeConfig): Watch {
  return new Watch(kc)
}
