// Starting and stopping the sandbox's daemons. Each daemon is started detached, logs to a file in the
// sandbox directory, and is later stopped by its pid only if its command line still names that
// directory, so a recycled pid of some unrelated process is never signalled.
import { spawn } from 'node:child_process'
import { closeSync, openSync, readFileSync, readdirSync } from 'node:fs'

export interface DaemonRecord {
  name: string
  pid: number
  bin: string
  args: string[]
  log: string
  env?: Record<string, string>
}

/** GOGC of the sandbox's Go processes (the control plane, the simulator's helm runs): see startSandbox. */
export const SANDBOX_GOGC = '400'

export function spawnDaemon(rec: Omit<DaemonRecord, 'pid'>): DaemonRecord {
  const fd = openSync(rec.log, 'a')
  const child = spawn(rec.bin, rec.args, {
    detached: true,
    stdio: ['ignore', fd, fd],
    env: { ...process.env, ...rec.env },
  })
  closeSync(fd)
  child.unref()
  if (child.pid === undefined) throw new Error(`could not start ${rec.name} (${rec.bin})`)
  // An exec failure (ENOENT) is reported asynchronously; record it so waits fail fast.
  child.on('error', () => undefined)
  return { ...rec, pid: child.pid }
}

/** True while pid runs and its command line mentions marker (the sandbox directory). */
export function isOurs(pid: number, marker: string): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // A zombie has exited already; its parent just has not reaped it yet.
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return false
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    return cmdline.includes(marker)
  } catch {
    return false
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export async function stopDaemon(pid: number, marker: string, graceMs = 5000): Promise<void> {
  if (!isOurs(pid, marker)) return
  try {
    process.kill(pid, 'SIGTERM')
  } catch {
    return
  }
  const deadline = Date.now() + graceMs
  while (Date.now() < deadline) {
    if (!isOurs(pid, marker)) return
    await sleep(50)
  }
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    return
  }
  while (isOurs(pid, marker)) await sleep(20)
}

/** Every live process whose command line mentions marker. */
export function processesMentioning(marker: string): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry)
    if (Number.isInteger(pid) && pid !== process.pid && isOurs(pid, marker)) pids.push(pid)
  }
  return pids
}

export function tailFile(path: string, lines = 20): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return '(no log)'
  }
}
