// One run of a command that changes the platform (install, upgrade, uninstall): its Ctrl-C handling, its run
// lock, its one --timeout clock, its platform watch and its steps, begun and ended in one place. The commands
// parse flags, ask their questions, then hand their steps to an Operation.
import type { Cluster } from '../cluster/cluster.js'
import { PlatformWatch } from './follow.js'
import { Interrupt } from './interrupt.js'
import { RunLock } from '../cluster/lock.js'
import { isUnreachable } from '../cluster/cluster.js'
import { UserError } from '../platform/errors.js'
import { liveProgressWanted, runSteps, type ProgressOptions, type Step, type StepReport } from '../ui/progress.js'

/** How often a step is tried again while the API server cannot be reached. */
const OUTAGE_RETRY_MS = 1000

const lineOf = (err: unknown): string =>
  err instanceof UserError ? err.message : ((err as Error)?.message ?? String(err)).split('\n')[0]!

export interface OperationOptions {
  cluster: Cluster
  namespace: string
  command: 'install' | 'upgrade' | 'uninstall'
  /** What to do after an interrupt: said with exit 9. */
  resumeHint: string
  timeoutMs: number
  json: boolean
}

/** What steps need of their run: its interrupt, its deadline (set once the run has begun) and its platform watch. */
export type RunContext = Pick<Operation, 'interrupt' | 'deadline' | 'platformWatch'>

export class Operation {
  readonly interrupt: Interrupt
  readonly progress: ProgressOptions
  /** When the changes must be done: --timeout from begin(), the first change, so a question asked before does not use it up. */
  deadline = Infinity
  private lock: RunLock | undefined
  private watch: PlatformWatch | undefined
  private enders: (() => void)[] = []

  constructor(private opts: OperationOptions) {
    this.interrupt = new Interrupt(opts.resumeHint)
    this.progress = {
      live: liveProgressWanted(opts.json),
      stream: opts.json ? process.stderr : process.stdout,
    }
  }

  /** The cluster and namespace the run acts on. */
  get cluster(): Cluster {
    return this.opts.cluster
  }

  get namespace(): string {
    return this.opts.namespace
  }

  /** Runs body in a new Operation and ends it (watch, lock, signal handlers) however body ends. */
  static async run<T>(opts: OperationOptions, body: (op: Operation) => Promise<T>): Promise<T> {
    const op = new Operation(opts)
    try {
      return await body(op)
    } finally {
      await op.end()
    }
  }

  /** Takes the platform's run lock (exit 11 while another run holds it) and starts the --timeout clock. */
  async begin(): Promise<void> {
    const { lock, note } = await RunLock.acquire(this.opts.cluster, this.opts.namespace, this.opts.command, (line) =>
      process.stderr.write(`${line}\n`),
    )
    this.lock = lock
    this.interrupt.onStop(() => lock.release())
    if (note) process.stderr.write(`${note}\n`)
    this.deadline = Date.now() + this.opts.timeoutMs
  }

  /** Throws when the lock was lost (another run took it over): checked before every write that matters. */
  readonly guard = (): void => this.lock?.check()

  /** Frees the namespace's lock record when the namespace itself is about to be deleted (purge). */
  lockGoesWithNamespace(): void {
    this.lock?.goesWithNamespace()
  }

  /** The one watch of the platform's objects, started on first use. */
  readonly platformWatch = (): PlatformWatch =>
    (this.watch ??= new PlatformWatch(this.opts.cluster, this.opts.namespace).start())

  /** Something to dispose of when the operation ends (a teardown's watches). */
  onEnd(fn: () => void): void {
    this.enders.push(fn)
  }

  /** Runs steps with progress; before each, a requested interrupt stops the run and a lost lock fails it. */
  steps(steps: Step[]): Promise<void> {
    return runSteps(
      steps.map((s) => ({
        ...s,
        run: async (r: StepReport) => {
          if (this.interrupt.requested) throw this.interrupt.error()
          this.guard()
          return this.throughOutages(s, r)
        },
      })),
      this.progress,
    )
  }

  /**
   * Runs a step again while the API server cannot be reached, until the deadline: a control-plane restart
   * during a run is not a failure (steps resume from what the cluster shows, as a re-run does). Before the run
   * has begun (preflight, no deadline yet) an unreachable server fails at once.
   */
  private async throughOutages(s: Step, r: StepReport): Promise<string | void> {
    let since = 0
    let said = 0
    for (;;) {
      try {
        const result = await s.run(r)
        if (since) r.line(`the API server answers again after ${Math.round((Date.now() - since) / 1000)} s`)
        return result
      } catch (err) {
        if (!isUnreachable(err) || !Number.isFinite(this.deadline) || Date.now() > this.deadline) throw err
        if (this.interrupt.requested) throw this.interrupt.error()
        const now = Date.now()
        since ||= now
        // Said at once, then every 5 s: a line per retry would flood a CI log.
        if (now - said >= 5000) {
          said = now
          r.line(`API server unreachable for ${Math.round((now - since) / 1000)} s, retrying: ${lineOf(err)}`)
        }
        await new Promise((resolve) => setTimeout(resolve, OUTAGE_RETRY_MS))
        this.guard()
      }
    }
  }

  private async end(): Promise<void> {
    this.watch?.stop()
    for (const fn of this.enders) fn()
    await this.lock?.release()
    this.interrupt.dispose()
  }
}
