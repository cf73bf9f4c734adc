// Install speed per engine generation, at the generation's real resync (contract section 0: 180 s on S, 60 s
// on N): `install` with nudges against `install --no-accelerate` (the engine alone), and the critical-path
// bound: the sum over dependency layers of the slowest component's time from its Composition's creation to
// Ready (Ready as the CLI means it: running). A watcher beside each install records those times in ms.
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { startSandbox, type EngineKind, type Sandbox } from '../sandbox/lib/sandbox.js'
import type { GenerationName } from '../sandbox/engine/generation.js'
import { COMPONENTS_0_2_53 } from '../sandbox/fixtures/components.js'
import { loadCluster } from '../src/cluster/cluster.js'
import { PlatformWatch } from '../src/operations/follow.js'
import { isReady } from '../src/platform/objects.js'
import { platformState } from '../src/platform/state.js'
import { type Component, type InstallerSpec, parseComponents } from '../src/platform/components.js'

const NS = 'krateo-system'

export interface InstallRun {
  generation: GenerationName
  /** The engine simulator, or the real Gen S engine (core-provider 0.26.1, cdc 0.20.2) as processes. */
  engine: EngineKind
  accelerate: boolean
  /** Seconds every component's pods take to start (0: kwok's, ready at once). */
  podStartSeconds: number
  /** The `install` command, end to end. */
  wallMs: number
  /** From the Installer CR's creation to the platform Ready (the self-reconcile the nudges speed up). */
  followMs: number
  /** Sum over layers of the slowest component's creation-to-Ready time (the Installer is layer 0). */
  criticalPathMs: number
  layers: { depth: number; slowest: string; ms: number }[]
}

interface Times {
  createdAt?: number
  readyAt?: number
}

/** Dependency depth of every component: 1 for one with no dependency, else one more than its deepest dependency. */
export function depths(components: Component[]): Map<string, number> {
  const byName = new Map(components.map((c) => [c.name, c]))
  const out = new Map<string, number>()
  const depthOf = (name: string): number => {
    const known = out.get(name)
    if (known !== undefined) return known
    const deps = (byName.get(name)?.deps ?? []).filter((d) => byName.has(d))
    const d = 1 + Math.max(0, ...deps.map(depthOf))
    out.set(name, d)
    return d
  }
  for (const c of components) depthOf(c.name)
  return out
}

/** The critical path: per layer the slowest component (creation to Ready), summed. */
export function criticalPath(
  components: Component[],
  times: Map<string, Times>,
  installer: Times,
): InstallRun['layers'] {
  const layers: InstallRun['layers'] = [
    { depth: 0, slowest: 'installer', ms: (installer.readyAt ?? 0) - (installer.createdAt ?? 0) },
  ]
  const depth = depths(components)
  for (const d of [...new Set(depth.values())].sort((a, b) => a - b)) {
    let slowest = { name: '', ms: 0 }
    for (const c of components.filter((x) => depth.get(x.name) === d)) {
      const t = times.get(c.name)
      if (t?.createdAt === undefined || t.readyAt === undefined) continue
      if (t.readyAt - t.createdAt >= slowest.ms) slowest = { name: c.name, ms: t.readyAt - t.createdAt }
    }
    if (slowest.name) layers.push({ depth: d, slowest: slowest.name, ms: slowest.ms })
  }
  return layers
}

function runInstall(sb: Sandbox, args: string[]): Promise<number> {
  const repo = join(import.meta.dirname, '..')
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        join(repo, 'bin/run.js'),
        'install',
        '--kubeconfig',
        sb.kubeconfig,
        '--chart',
        `oci://${sb.registry}/charts/installer`,
        '--version',
        '0.2.53',
        ...sb.registryFlags,
        '--exposure',
        'LoadBalancer',
        ...args,
      ],
      {
        env: { ...process.env, ...sb.helmEnv(), KUBECONFIG: sb.kubeconfig, HELM_BIN: sb.helm, CI: 'true' },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    )
    let stderr = ''
    child.stderr.on('data', (b: Buffer) => {
      stderr = (stderr + b.toString()).slice(-4000)
    })
    child.on('close', (code) =>
      code === 0 ? resolve(code) : reject(new Error(`install ${args.join(' ')} exited ${code}:\n${stderr}`)),
    )
  })
}

/** One install on a fresh sandbox of that generation, with a watcher recording when each component ran. */
export async function measureInstall(
  generation: GenerationName,
  accelerate: boolean,
  log: (line: string) => void,
  podStartSeconds = 0,
  engine: EngineKind = 'sim',
): Promise<InstallRun> {
  // Pods that take a while to start, as images pulled from a registry do (kwok's are ready at once).
  const readinessDelaySeconds = podStartSeconds
    ? Object.fromEntries(COMPONENTS_0_2_53.map((c) => [c.name, podStartSeconds]))
    : {}
  const sb = await startSandbox({
    ownerPid: process.pid,
    generation,
    engineKind: engine,
    engineSettings: { readinessDelaySeconds },
  })
  const pw = new PlatformWatch(loadCluster({ kubeconfig: sb.kubeconfig }), NS)
  const times = new Map<string, Times>()
  const installer: Times = {}
  let readyAt: number | undefined
  try {
    pw.onChange(() => {
      const now = Date.now()
      const obs = pw.snapshot()
      if (obs.installer && !installer.createdAt)
        installer.createdAt = Date.parse(obs.installer.metadata.creationTimestamp ?? '') || now
      if (obs.installer && isReady(obs.installer)) installer.readyAt ??= now
      const state = platformState(obs)
      for (const c of state.components) {
        const t = times.get(c.name) ?? {}
        if (obs.compositions.has(c.name)) t.createdAt ??= now
        // The last time it became Ready: a component that drops back (a re-render) is not done before that.
        if (c.stage === 'ready') t.readyAt ??= now
        else delete t.readyAt
        times.set(c.name, t)
      }
      if (state.phase === 'Ready') readyAt ??= now
      else readyAt = undefined
    })
    pw.start()
    const started = Date.now()
    await runInstall(sb, ['--timeout', '40m', ...(accelerate ? [] : ['--no-accelerate'])])
    const wallMs = Date.now() - started
    const components = parseComponents((pw.snapshot().installer?.spec ?? {}) as InstallerSpec).filter(
      (c) => times.get(c.name)?.createdAt,
    )
    const layers = criticalPath(components, times, installer)
    const run: InstallRun = {
      generation,
      engine,
      accelerate,
      podStartSeconds,
      wallMs,
      followMs: (readyAt ?? Date.now()) - (installer.createdAt ?? started),
      criticalPathMs: layers.reduce((a, l) => a + l.ms, 0),
      layers,
    }
    log(
      `  Gen ${generation}${engine === 'real' ? ' (real engine)' : ''} ${accelerate ? 'with nudges' : 'engine alone'}${podStartSeconds ? ` (pods start in ${podStartSeconds} s)` : ''}: ${(wallMs / 1000).toFixed(0)} s`,
    )
    return run
  } finally {
    pw.stop()
    await sb.stop()
  }
}

/** Seconds a pod takes to start in the realistic runs (an image pull); kwok's pods are ready at once. */
export const POD_START_SECONDS = 10

/**
 * Both generations: the engine-alone installs run side by side (they mostly wait for resyncs), then the
 * nudged ones one after the other, so no nudged run shares the machine with another install; then the
 * nudged ones again with pods that take POD_START_SECONDS to start, for the critical-path bound.
 */
export async function speedBench(
  log: (line: string) => void,
  parts: { alone: boolean } = { alone: true },
): Promise<SpeedResult> {
  const alone = parts.alone ? await Promise.all((['S', 'N'] as const).map((g) => measureInstall(g, false, log))) : []
  const nudged: InstallRun[] = []
  for (const g of ['S', 'N'] as const) {
    if (parts.alone) nudged.push(await measureInstall(g, true, log))
    nudged.push(await measureInstall(g, true, log, POD_START_SECONDS))
  }
  // The real Gen S engine (one real sandbox per machine, so one after the other): its core-provider generates a
  // CRD per definition (controller-gen), which may move where the time goes.
  if (parts.alone) {
    alone.push(await measureInstall('S', false, log, 0, 'real'))
    nudged.push(await measureInstall('S', true, log, 0, 'real'))
  }
  return { alone, nudged }
}

export interface SpeedResult {
  alone: InstallRun[]
  nudged: InstallRun[]
}

export function speedReport(r: SpeedResult): string[] {
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`
  const goal = { S: 5, N: 2 } as const
  const out = ["install speed at the engine's real resync (180 s Gen S, 60 s Gen N), installer 0.2.53, one run each:"]
  for (const n of r.nudged) {
    const pods =
      (n.engine === 'real' ? 'the real engine, ' : '') +
      (n.podStartSeconds ? `pods start in ${n.podStartSeconds} s` : 'pods ready at once (kwok)')
    const a = n.podStartSeconds
      ? undefined
      : r.alone.find((x) => x.generation === n.generation && x.engine === n.engine)
    const bound = n.followMs / n.criticalPathMs
    if (a) {
      const speedup = a.wallMs / n.wallMs
      out.push(
        `  Gen ${n.generation}, ${pods}: engine alone ${s(a.wallMs)}, with nudges ${s(n.wallMs)}: ${speedup.toFixed(1)}x faster (goal ${goal[n.generation]}x: ${speedup >= goal[n.generation] ? 'met' : 'NOT met'})`,
      )
    } else out.push(`  Gen ${n.generation}, ${pods}: with nudges ${s(n.wallMs)}`)
    out.push(
      `    self-reconcile ${s(n.followMs)} against a critical path of ${s(n.criticalPathMs)}: ${bound.toFixed(2)}x (goal 1.3x: ${bound <= 1.3 ? 'met' : 'NOT met'})`,
    )
    out.push(
      `    critical path: ${n.layers.map((l) => `${l.depth === 0 ? 'installer' : `layer ${l.depth} ${l.slowest}`} ${s(l.ms)}`).join(', ')}`,
    )
  }
  return out
}
