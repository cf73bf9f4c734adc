// A work queue like controller-runtime's: one key is never worked on twice at once, a key added while
// in flight runs again afterwards, and at most `concurrency` keys run together.
export class WorkQueue {
  private pending = new Map<string, () => Promise<void>>()
  private inFlight = new Set<string>()
  private order: string[] = []
  private timers = new Map<string, { timer: NodeJS.Timeout; due: number }>()
  private draining = false

  constructor(
    private concurrency: number,
    private onError: (key: string, err: unknown) => void,
  ) {}

  /** Work waiting to run or running (not what waits on a timer, as a resync). */
  get busy(): boolean {
    return this.pending.size > 0 || this.inFlight.size > 0
  }

  add(key: string, work: () => Promise<void>): void {
    if (!this.pending.has(key)) this.order.push(key)
    this.pending.set(key, work)
    this.pump()
  }

  /** As client-go's delaying queue: a key already waiting keeps the sooner of its two times. */
  addAfter(key: string, ms: number, work: () => Promise<void>): void {
    const due = Date.now() + ms
    const waiting = this.timers.get(key)
    if (waiting && waiting.due <= due) return
    if (waiting) clearTimeout(waiting.timer)
    this.timers.set(key, {
      due,
      timer: setTimeout(() => {
        this.timers.delete(key)
        this.add(key, work)
      }, ms),
    })
  }

  /**
   * Starts nothing more and resolves once the work running now has ended, as a controller's graceful shutdown: a
   * helm run cut midway would leave its release pending.
   */
  async drain(): Promise<void> {
    this.draining = true
    while (this.inFlight.size > 0) await new Promise((resolve) => setTimeout(resolve, 50))
  }

  private pump(): void {
    while (!this.draining && this.inFlight.size < this.concurrency) {
      const idx = this.order.findIndex((k) => !this.inFlight.has(k))
      if (idx < 0) return
      const key = this.order.splice(idx, 1)[0]!
      const work = this.pending.get(key)!
      this.pending.delete(key)
      this.inFlight.add(key)
      work()
        .catch((err) => {
          // Like controller-runtime: a failed reconcile is retried after a pause.
          this.onError(key, err)
          this.addAfter(key, 2000, work)
        })
        .finally(() => {
          this.inFlight.delete(key)
          this.pump()
        })
    }
  }
}
