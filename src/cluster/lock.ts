// One run at a time: install, upgrade and uninstall hold a coordination.k8s.io Lease in the platform's
// namespace while they change anything, renewed while they run. Two runs at once undo each other (an
// upgrade's unpause re-creates what an uninstall drains); a second run is refused, naming the holder. A
// lease whose holder stopped renewing (killed, its machine gone) is taken over once it expired, and said so.
import {
  COMMAND_ANNOTATION,
  LEASE_SECONDS,
  LOCK_NAME,
  type LeaseObject,
  type LockHolder,
  lockHolder,
  lockState,
  microTime,
} from '../platform/lease.js'
import { readlinkSync } from 'node:fs'
import { hostname, userInfo } from 'node:os'
import { type Cluster, apiFailure, requestPath, statusOf } from './cluster.js'
import { ExitCode, UserError } from '../platform/errors.js'
import { MANAGED_BY_LABEL, MANAGED_BY_US } from '../platform/ownership.js'

const leasePath = (ns: string, name = '') =>
  `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases${name ? `/${name}` : ''}`

/** Whether the lease stays as it was (same resourceVersion) for ms of this process's own clock. */
async function unchangedFor(cluster: Cluster, namespace: string, seen: LeaseObject, ms: number): Promise<boolean> {
  const until = performance.now() + ms
  while (performance.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, Math.min(2000, Math.max(0, until - performance.now()))))
    const now = await requestPath<LeaseObject>(cluster, 'GET', leasePath(namespace, LOCK_NAME))
    if (now?.metadata.resourceVersion !== seen.metadata.resourceVersion) return false
  }
  return true
}

function heldBy(namespace: string, held: LockHolder): UserError {
  return new UserError(
    `another run holds the krateo-installer lock on ${namespace}: ${held.command} by ${held.holder}, since ${held.since}`,
    ExitCode.Locked,
    `wait for it to finish (status shows it); if that run died, its lock expires ${held.durationSeconds}s after its last renewal (${held.expiresAt}) and the next run takes it over`,
  )
}

export class RunLock {
  private timer: NodeJS.Timeout | undefined
  private lease: LeaseObject
  /** Set when someone else took the lease from us: the command must stop at its next step. */
  lost: string | null = null

  private constructor(
    private cluster: Cluster,
    private namespace: string,
    lease: LeaseObject,
  ) {
    this.lease = lease
  }

  static identity(): string {
    let user = 'unknown'
    try {
      user = userInfo().username
    } catch {
      /* no passwd entry in some containers */
    }
    return `${user}@${hostname()} pid ${process.pid}${pidNamespace() ? ` pidns ${pidNamespace()}` : ''}`
  }

  /**
   * Takes the lock for `command`, or refuses with who holds it. Returns a note when an expired lease was
   * taken over. The namespace must exist.
   */
  static async acquire(
    cluster: Cluster,
    namespace: string,
    command: string,
    say: (line: string) => void = () => undefined,
  ): Promise<{ lock: RunLock; note?: string }> {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const taken = await RunLock.take(cluster, namespace, command, say)
        if (taken) return taken
      } catch (err) {
        if (err instanceof UserError) throw err
        // Someone else created or renewed it between our read and our write: read again.
        if (statusOf(err) === 409) continue
        if (statusOf(err) === 404)
          throw new UserError(`namespace ${namespace} does not exist`, ExitCode.Usage, 'check -n/--namespace')
        throw apiFailure(err, cluster, `take the krateo-installer lock (Lease ${namespace}/${LOCK_NAME})`)
      }
    }
    throw new UserError(
      `another run keeps taking the krateo-installer lock on ${namespace}`,
      ExitCode.Locked,
      'wait for the other run to finish (status shows it)',
    )
  }

  /** One read and one write of the lease: the lock, a refusal, or null when the lease moved while watched. */
  private static async take(
    cluster: Cluster,
    namespace: string,
    command: string,
    say: (line: string) => void,
  ): Promise<{ lock: RunLock; note?: string } | null> {
    const now = new Date()
    const metadata = {
      name: LOCK_NAME,
      namespace,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY_US },
      annotations: { [COMMAND_ANNOTATION]: command },
    }
    const spec = (at: string) => ({
      holderIdentity: RunLock.identity(),
      leaseDurationSeconds: LEASE_SECONDS,
      acquireTime: at,
      renewTime: at,
    })
    const current = await requestPath<LeaseObject>(cluster, 'GET', leasePath(namespace, LOCK_NAME))
    if (!current) {
      const created = await requestPath<LeaseObject>(cluster, 'POST', leasePath(namespace), {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata,
        spec: spec(microTime(now)),
      })
      return { lock: new RunLock(cluster, namespace, created!).start() }
    }
    const held = lockHolder(current)
    const judged = lockState(current, now.getTime())
    // A holder on this machine whose process is gone (killed, crashed) holds nothing: no need to wait out its lease.
    const gone = !!held && holderGone(held.holder)
    const state = judged !== 'free' && gone ? 'expired' : judged
    if (state === 'held') throw heldBy(namespace, held!)
    // Expired, or renewed in this machine's future, by timestamps another machine's clock wrote: taken over only
    // once this process has itself seen the lease unchanged for its whole duration, as its holder declared it (a live
    // holder renews within it; client-go's leader election judges a record the same way).
    let watched = false
    if (held && state !== 'free' && !gone) {
      say(
        `the krateo-installer lock's holder (${held.command} by ${held.holder}) last renewed it at ${held.renewed} by its clock${state === 'ahead' ? ', ahead of this machine' : ''}: watching it for ${held.durationSeconds}s before taking it over`,
      )
      if (!(await unchangedFor(cluster, namespace, current, held.durationSeconds * 1000)))
        if (state === 'ahead') throw heldBy(namespace, held)
        else return null
      watched = true
    }
    const body = {
      ...current,
      metadata: { ...current.metadata, ...metadata, resourceVersion: current.metadata.resourceVersion },
      spec: spec(microTime(new Date())),
    }
    const taken = await requestPath<LeaseObject>(cluster, 'PUT', leasePath(namespace, LOCK_NAME), body)
    const note =
      state !== 'free'
        ? `took over the krateo-installer lock: ${held!.command} by ${held!.holder} ${watched ? `stopped renewing it at ${held!.renewed} (unchanged for ${held!.durationSeconds}s as seen here)` : 'is no longer running'}`
        : undefined
    return { lock: new RunLock(cluster, namespace, taken!).start(), note }
  }

  private start(): this {
    this.timer = setInterval(() => void this.renew(), (LEASE_SECONDS / 3) * 1000)
    this.timer.unref()
    return this
  }

  private async renew(): Promise<void> {
    if (this.lost) return
    // A merge patch guarded by the lease's uid and resourceVersion: a PUT would re-create a deleted Lease (Leases
    // allow create on update), so a run would never learn that its lock was taken away.
    const body = {
      metadata: { uid: this.lease.metadata.uid, resourceVersion: this.lease.metadata.resourceVersion },
      spec: { renewTime: microTime(new Date()) },
    }
    try {
      const renewed = await requestPath<LeaseObject>(
        this.cluster,
        'PATCH',
        leasePath(this.namespace, LOCK_NAME),
        body,
        { contentType: 'application/merge-patch+json' },
      )
      // Gone under us (deleted by hand, or its namespace): nothing protects this run any more; stop at the next check.
      if (this.leaving) return
      if (!renewed)
        this.lost = `the krateo-installer lock (Lease ${this.namespace}/${LOCK_NAME}) was deleted while this run held it`
      else this.lease = renewed
    } catch (err) {
      // A conflict means another run took the lease (ours had expired); a transport blip is retried next tick.
      if (statusOf(err) === 409) {
        const now = await requestPath<LeaseObject>(this.cluster, 'GET', leasePath(this.namespace, LOCK_NAME)).catch(
          () => null,
        )
        const h = lockHolder(now)
        if (h && h.holder !== this.lease.spec?.holderIdentity)
          this.lost = `${h.command} by ${h.holder} took the krateo-installer lock`
        else if (now) this.lease = now
      }
    }
  }

  /**
   * This run deletes the namespace that holds the Lease (--purge, its last step): the lock goes with it. Stop
   * renewing, and do not count its disappearance as a lost lock.
   */
  goesWithNamespace(): void {
    this.leaving = true
    clearInterval(this.timer)
  }

  private leaving = false

  /** Throws when the lock was lost, so no two runs change the platform at once. */
  check(): void {
    if (this.lost)
      throw new UserError(`stopped: ${this.lost}`, ExitCode.Locked, 'let that run finish, then check with status')
  }

  /** Gives the lock back (deletes the Lease if it is still ours); never fails the command. */
  async release(): Promise<void> {
    clearInterval(this.timer)
    if (this.lost) return
    try {
      const now = await requestPath<LeaseObject>(this.cluster, 'GET', leasePath(this.namespace, LOCK_NAME))
      if (now?.spec?.holderIdentity !== this.lease.spec?.holderIdentity) return
      await requestPath(this.cluster, 'DELETE', `${leasePath(this.namespace, LOCK_NAME)}`, {
        kind: 'DeleteOptions',
        apiVersion: 'v1',
        preconditions: { resourceVersion: now!.metadata.resourceVersion },
      })
    } catch {
      // It expires on its own within LEASE_SECONDS.
    }
  }
}

/**
 * A holder identity of this machine and this PID namespace whose process no longer runs: only then is it certain
 * (a container with the same hostname has its own pids; a holder that names no PID namespace is never certain).
 * Pure but for the process check.
 */
export function holderGone(
  holder: string,
  host = hostname(),
  alive: (pid: number) => boolean = processAlive,
  pidns = pidNamespace(),
): boolean {
  const m = /^.*@(.+) pid (\d+)(?: pidns (\S+))?$/.exec(holder)
  if (!m || m[1] !== host || !m[3] || m[3] !== pidns) return false
  return !alive(Number(m[2]))
}

let ownPidNamespace: string | undefined
/** This process's PID namespace (the inode of /proc/self/ns/pid); '' where it cannot be read. */
function pidNamespace(): string {
  if (ownPidNamespace === undefined) {
    try {
      ownPidNamespace = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1] ?? ''
    } catch {
      ownPidNamespace = ''
    }
  }
  return ownPidNamespace
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM'
  }
}

/** The lock's holder for status; null when free or expired. */
export async function readLock(cluster: Cluster, namespace: string): Promise<LockHolder | null> {
  const lease = await requestPath<LeaseObject>(cluster, 'GET', leasePath(namespace, LOCK_NAME)).catch(() => null)
  const state = lockState(lease, Date.now())
  return state === 'held' || state === 'ahead' ? lockHolder(lease) : null
}
