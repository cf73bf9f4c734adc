// The ports a sandbox's daemons listen on. A port found free and handed to a daemon that binds it seconds later
// was taken in between (a full run: "kube-scheduler ... bind: address already in use", the sandbox then scheduled
// no pod): by another sandbox starting at the same time, or as the local port of an outgoing connection, which
// the kernel picks from its ephemeral range. So the ports come from below that range, where no connection takes
// them, and each is claimed by a lock file until its sandbox stops.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** The machine's claims, one file per port holding `<pid> <sandbox dir>`. */
// Not krateo-sandbox-*: that is where sandboxes live, by name (sandbox/cli.ts).
const claimsDir = () => join(tmpdir(), 'krateo-port-claims')

/** Where the kernel's ephemeral range starts (32768 unless the machine says otherwise). */
function ephemeralStart(): number {
  try {
    const first = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0])
    return Number.isInteger(first) && first > 0 ? first : 32768
  } catch {
    return 32768
  }
}

/** The range claimed ports come from: the 12000 ports below the ephemeral range (fixed ports of tools stay below). */
export function claimRange(): [number, number] {
  const end = Math.max(ephemeralStart(), 16000)
  return [Math.max(end - 12000, 10000), end]
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

export function canListen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, host, () => server.close(() => resolve(true)))
  })
}

/** A claim whose sandbox is gone, or whose claimer died, protects nothing. */
function stale(file: string): boolean {
  try {
    const [pid, dir] = readFileSync(file, 'utf8').split(' ')
    return !processAlive(Number(pid)) || !dir || !existsSync(dir)
  } catch {
    return false
  }
}

/** Claims `port` for the sandbox in `dir`, if no live claim holds it and it can be listened on. */
export async function claimPort(port: number, dir: string): Promise<boolean> {
  mkdirSync(claimsDir(), { recursive: true })
  const file = join(claimsDir(), String(port))
  const take = () => {
    try {
      writeFileSync(file, `${process.pid} ${dir}`, { flag: 'wx' })
      return true
    } catch {
      return false
    }
  }
  if (!take()) {
    if (!stale(file)) return false
    rmSync(file, { force: true })
    if (!take()) return false
  }
  // Listened on already (a process of another tool): not ours to use.
  if (await canListen('0.0.0.0', port)) return true
  rmSync(file, { force: true })
  return false
}

/** n ports for the sandbox in `dir`, each claimed until releasePorts(dir). */
export async function claimPorts(n: number, dir: string): Promise<number[]> {
  const [low, high] = claimRange()
  const ports: number[] = []
  for (let tries = 0; ports.length < n && tries < 2000; tries++) {
    const port = low + Math.floor(Math.random() * (high - low))
    if (!ports.includes(port) && (await claimPort(port, dir))) ports.push(port)
  }
  if (ports.length < n) throw new Error(`no free port below ${high} for the sandbox (claims in ${claimsDir()})`)
  return ports
}

/** Gives back every port the sandbox in `dir` claimed. */
export function releasePorts(dir: string): void {
  let files: string[]
  try {
    files = readdirSync(claimsDir())
  } catch {
    return
  }
  for (const f of files) {
    const file = join(claimsDir(), f)
    try {
      if (readFileSync(file, 'utf8').split(' ')[1] === dir) rmSync(file, { force: true })
    } catch {
      /* released by another */
    }
  }
}
