// The sandbox: a real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler), kwok for fake nodes and pod lifecycle, an OCI registry for charts and the sandbox agent
// (LoadBalancer controller, and the Krateo engine simulator), all on free 127.0.0.1 ports.
import { spawnSync } from 'node:child_process'
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { createHash } from 'node:crypto'
import { request } from 'node:https'
import { request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import bcrypt from 'bcryptjs'
import { binaries, cacheDir, sandboxDir, type Binaries } from './paths.js'
import { crdgenCache, realEngineBinaries } from '../real/images.js'
import { createCA, createServiceAccountKey, issueCert, type CertPair } from './pki.js'
import { writeKubeconfig } from './kubeconfig.js'
import { canListen, claimPort, claimPorts, claimRange, releasePorts } from './ports.js'
import { publishFixtureCharts } from '../fixtures/charts.js'
import { ENGINE_CONFIG, type EngineSettings } from '../engine/context.js'
import { type GenerationName, isGenerationName } from '../engine/generation.js'
import {
  isOurs,
  SANDBOX_GOGC,
  processesMentioning,
  sleep,
  spawnDaemon,
  stopDaemon,
  tailFile,
  type DaemonRecord,
} from './processes.js'

export const FAKE_NODE_NAME = 'kwok-node-0'
const STATE_FILE = 'state.json'

export interface SandboxState {
  name: string
  dir: string
  startedAt: string
  ports: {
    etcd: number
    etcdPeer: number
    apiserver: number
    controllerManager: number
    scheduler: number
    kwok: number
    registry: number
    serviceProxy?: number
    /** The engine simulator's webhooks: the same port across restarts of the agent (the API keeps the URL). */
    engineWebhook?: number
  }
  kubeconfig: string
  registry: string
  helm: string
  helm4: string | null
  ownerPid: number | null
  /** The agent runs the Krateo engine (simulated, or the real one as processes: engineKind). */
  engine: boolean
  /** sim: the TypeScript simulator (both generations); real: core-provider, cdc and chart-inspector (Gen S). */
  engineKind?: EngineKind
  /** The registry serves TLS issued by the sandbox CA (the real engine pulls over HTTPS only). */
  registryTls?: boolean
  /** The engine generation the simulator started as (contract section 0). */
  generation?: GenerationName
  /** Fixture charts pushed to the registry (oci://<registry>/charts/...). */
  charts: string[]
  /** host:port of the second registry, which requires a login (htpasswd), when one was asked for. */
  privateRegistry?: string
  /**
   * The test run's directory of cluster images ($KRATEO_SANDBOX_IMAGES), when this sandbox may share them: its CA
   * and keys are the run's, its registry on one of the run's fixed ports (IMAGE_REGISTRY_PORTS), so an image of one
   * sandbox is a cluster another can run.
   */
  images?: string
  daemons: DaemonRecord[]
}

export type EngineKind = 'sim' | 'real'
export const isEngineKind = (v: string): v is EngineKind => v === 'sim' || v === 'real'

export interface StartOptions {
  /** The engine the agent runs (default: $KRATEO_SANDBOX_ENGINE, else sim). real is Gen S only. */
  engineKind?: EngineKind
  /** Name shown in logs; also the directory name for the CLI's named sandboxes. */
  name?: string
  /** Use this directory (must not hold a running sandbox); default: a fresh temporary one. */
  dir?: string
  /** Start the agent (LoadBalancer controller and engine simulator); default true. */
  agent?: boolean
  /** Run the Krateo engine simulator in the agent; default true. */
  engine?: boolean
  /** Push the fixture charts to the registry; default true. */
  charts?: boolean
  /** Engine generation (default: $KRATEO_SANDBOX_GENERATION, else S). */
  generation?: GenerationName
  /** Initial engine settings (resync interval, fault knobs). */
  engineSettings?: Partial<EngineSettings>
  /**
   * Also run a registry that requires a login (distribution's htpasswd auth) and push the 0.2.53 line to
   * oci://<privateRegistry>/private with these credentials: a private registry as users have them.
   */
  privateRegistry?: { username: string; password: string }
  /** kube-apiserver writes an audit log (logs/audit.log): who made which request (benchmarks). */
  audit?: boolean
  /** Tear everything down when this process exits (tests); the CLI's `up` leaves it null. */
  ownerPid?: number | null
  log?: (message: string) => void
}

function fileExists(path: string): boolean {
  return existsSync(path)
}

export function ensureBinaries(log: (m: string) => void = () => undefined): Binaries {
  const bins = binaries()
  const missing = Object.entries(bins).filter(([key, path]) => key !== 'helm4' && !fileExists(path))
  if (missing.length > 0) {
    log(`building sandbox binaries into ${cacheDir()} (first time only)`)
    const result = spawnSync('bash', [join(sandboxDir, 'build.sh')], { stdio: ['ignore', 'inherit', 'inherit'] })
    // helm 4 is optional: the sandbox works with helm 3 alone.
    const stillMissing = Object.entries(bins).filter(([key, path]) => key !== 'helm4' && !fileExists(path))
    if (stillMissing.length > 0) {
      throw new Error(
        `sandbox binaries missing after build (exit ${result.status}): ${stillMissing.map(([k]) => k).join(', ')}`,
      )
    }
  }
  return bins
}

interface TlsFiles {
  ca: string
  cert: string
  key: string
}

function httpsStatus(url: string, tls: TlsFiles, timeoutMs = 2000): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      url,
      {
        ca: readFileSync(tls.ca),
        cert: readFileSync(tls.cert),
        key: readFileSync(tls.key),
        timeout: timeoutMs,
      },
      (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      },
    )
    req.on('error', () => resolve(0))
    req.on('timeout', () => {
      req.destroy()
      resolve(0)
    })
    req.end()
  })
}

function httpStatus(url: string, timeoutMs = 2000): Promise<number> {
  return new Promise((resolve) => {
    const req = httpRequest(url, { timeout: timeoutMs }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('error', () => resolve(0))
    req.on('timeout', () => {
      req.destroy()
      resolve(0)
    })
    req.end()
  })
}

export class Sandbox {
  /** The owning process's CPU when this sandbox was made (reportCpu counts what it used since). */
  private readonly ownCpuAtStart = cpuSeconds(process.pid)

  constructor(public state: SandboxState) {}

  get dir(): string {
    return this.state.dir
  }
  get kubeconfig(): string {
    return this.state.kubeconfig
  }
  /** host[:port] of the OCI registry (plain HTTP on loopback; with the real engine TLS on 127.0.0.N:443). */
  get registry(): string {
    return this.state.registry
  }
  /** host:port of the registry that requires a login (StartOptions.privateRegistry). */
  get privateRegistry(): string | undefined {
    return this.state.privateRegistry
  }
  get helm(): string {
    return this.state.helm
  }
  get engineKind(): EngineKind {
    return this.state.engineKind ?? 'sim'
  }
  /** The flags helm (and the CLI) need to reach the registry: plain HTTP, or TLS from the sandbox's CA. */
  get registryFlags(): string[] {
    return this.state.registryTls ? ['--ca-file', this.caFile] : ['--plain-http']
  }
  /** The Unix socket kube-apiserver's egress selector dials for calls to Services (real engine). */
  get egressSocket(): string {
    return join(this.dir, 'egress.sock')
  }
  get generation(): GenerationName {
    return this.state.generation ?? 'S'
  }
  /** The helm 4 binary, when it was built. */
  get helm4(): string | null {
    return this.state.helm4
  }
  get apiServerUrl(): string {
    return `https://127.0.0.1:${this.state.ports.apiserver}`
  }
  private get pki(): string {
    return join(this.dir, 'pki')
  }
  get caFile(): string {
    return join(this.pki, 'ca.crt')
  }
  private get adminTls(): TlsFiles {
    return { ca: this.caFile, cert: join(this.pki, 'admin.crt'), key: join(this.pki, 'admin.key') }
  }

  /** Environment that keeps helm's config, cache and registry logins inside the sandbox. */
  helmEnv(): Record<string, string> {
    const home = join(this.dir, 'helm')
    return {
      HELM_CONFIG_HOME: join(home, 'config'),
      HELM_CACHE_HOME: join(home, 'cache'),
      HELM_DATA_HOME: join(home, 'data'),
      HELM_REGISTRY_CONFIG: join(home, 'registry.json'),
      KUBECONFIG: this.kubeconfig,
    }
  }

  daemon(name: string): DaemonRecord | undefined {
    return this.state.daemons.find((d) => d.name === name)
  }

  save(): void {
    writeFileSync(join(this.dir, STATE_FILE), JSON.stringify(this.state, null, 2))
  }

  async waitApiServerReady(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      if ((await httpsStatus(`${this.apiServerUrl}/readyz`, this.adminTls)) === 200) return
      const apiserver = this.daemon('kube-apiserver')
      if (apiserver && !isOurs(apiserver.pid, this.dir)) {
        throw new Error(`kube-apiserver exited while starting:\n${tailFile(apiserver.log)}`)
      }
      await sleep(250)
    }
    throw new Error(
      `kube-apiserver not ready after ${timeoutMs / 1000}s:\n${tailFile(this.daemon('kube-apiserver')?.log ?? '')}`,
    )
  }

  /** One request to the API with cluster-admin credentials (setup steps, metrics, health). */
  async apiRequest(
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<{ status: number; body: string }> {
    const tls = this.adminTls
    const payload = body === undefined ? undefined : JSON.stringify(body)
    return new Promise((resolve, reject) => {
      const req = request(
        `${this.apiServerUrl}${path}`,
        {
          method,
          ca: readFileSync(tls.ca),
          cert: readFileSync(tls.cert),
          key: readFileSync(tls.key),
          headers: payload ? { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) } : {},
        },
        (res) => {
          let text = ''
          res.setEncoding('utf8')
          res.on('data', (chunk: string) => {
            text += chunk
          })
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
        },
      )
      req.on('error', reject)
      req.end(payload)
    })
  }

  apiGet(path: string): Promise<{ status: number; body: string }> {
    return this.apiRequest('GET', path)
  }

  /** POST that tolerates AlreadyExists; throws on any other failure. */
  async apiCreate(path: string, body: unknown): Promise<unknown> {
    const res = await this.apiRequest('POST', path, body)
    if (res.status >= 400 && res.status !== 409) throw new Error(`POST ${path}: HTTP ${res.status}: ${res.body}`)
    return res.body ? JSON.parse(res.body) : {}
  }

  /** Stops kube-apiserver and starts it again on the same port and storage, as an API outage. */
  async restartApiServer(downMs = 0): Promise<void> {
    const rec = this.daemon('kube-apiserver')
    if (!rec) throw new Error('no kube-apiserver in this sandbox')
    await stopDaemon(rec.pid, this.dir)
    if (downMs) await sleep(downMs)
    const restarted = spawnDaemon({ name: rec.name, bin: rec.bin, args: rec.args, log: rec.log, env: rec.env })
    this.state.daemons = this.state.daemons.map((d) => (d.name === rec.name ? restarted : d))
    this.save()
    await this.waitApiServerReady()
  }

  /**
   * Where saveCluster keeps the copy of etcd's data named name: the test run's images when this sandbox shares
   * them (an image made on the same registry address, of the same generation), else its own directory.
   */
  private clusterImage(name: string): string {
    // The real engine's pods are processes a restore would not bring back.
    if (this.engineKind === 'real') throw new Error('a cluster image needs the simulated engine')
    const key = createHash('sha256').update(`${this.generation} ${this.registry} ${name}`).digest('hex').slice(0, 16)
    return join(this.state.images ?? join(this.dir, 'images'), `image-${key}`)
  }

  hasClusterImage(name: string): boolean {
    return existsSync(this.clusterImage(name))
  }

  /**
   * Keeps the whole cluster as it is now (etcd's data) under a name, for restoreCluster. The control plane and the
   * engine stop for the copy and start again, as after a reboot of the node; the registries keep running.
   */
  async saveCluster(name: string): Promise<void> {
    const image = this.clusterImage(name)
    await this.stopEngineAtRest()
    await this.restartControlPlane(() => {
      // Whole or not at all: another sandbox of the run may be restoring it, or saving the same one.
      const draft = `${image}.${process.pid}.draft`
      cpSync(join(this.dir, 'etcd'), draft, { recursive: true })
      try {
        renameSync(draft, image)
      } catch {
        rmSync(draft, { recursive: true, force: true })
      }
    })
  }

  /**
   * Puts the cluster back as saveCluster(name) kept it: every object made since is gone, as on a cluster restored
   * from an etcd backup. The engine settings stay as they are now (a test set them for what comes next).
   */
  async restoreCluster(name: string): Promise<void> {
    const image = this.clusterImage(name)
    if (!existsSync(image)) throw new Error(`no cluster image "${name}" in this sandbox`)
    const settings = await this.engineSettings()
    await this.restartControlPlane(() => {
      rmSync(join(this.dir, 'etcd'), { recursive: true, force: true })
      cpSync(image, join(this.dir, 'etcd'), { recursive: true })
    }, settings)
  }

  /**
   * Stops the engine simulator between two pieces of work, and lets it end what it runs (agent.ts): an image taken
   * while a cdc's helm run was cut would hold a release left pending-upgrade, which the engine then waits on
   * before rolling it back.
   */
  private async stopEngineAtRest(): Promise<void> {
    const agent = this.daemon('agent')
    if (!agent) return
    await this.waitEngineQuiet()
    this.countCpu(agent)
    await stopDaemon(agent.pid, this.dir, 60_000)
    const res = await this.apiGet(`/api/v1/secrets?labelSelector=${encodeURIComponent('owner=helm')}`)
    const pending = (JSON.parse(res.body) as { items?: { metadata: { labels?: Record<string, string> } }[] }).items
      ?.filter((s) => s.metadata.labels?.status?.startsWith('pending'))
      .map((s) => s.metadata.labels?.name)
    if (res.status !== 200 || pending?.length)
      throw new Error(`the engine simulator stopped with helm releases pending: ${pending?.join(', ') ?? res.body}`)
  }

  /**
   * Stops every process of the control plane and the engine (not the registries), runs between, and starts them
   * again on the same ports. Every client starts afresh, since etcd's revision may go back.
   */
  private async restartControlPlane(between: () => void, settings?: Partial<EngineSettings>): Promise<void> {
    const order = ['kwok', 'kube-scheduler', 'kube-controller-manager', 'agent', 'kube-apiserver', 'etcd']
    const stopped = order.map((name) => this.daemon(name)).filter((d): d is DaemonRecord => d !== undefined)
    for (const daemon of stopped) {
      this.countCpu(daemon)
      await stopDaemon(daemon.pid, this.dir, stopGraceMs(daemon.name))
    }
    // What the engine forked (its helm runs) goes too; the registries stay.
    const kept = new Set(this.state.daemons.filter((d) => d.name.startsWith('registry')).map((d) => d.pid))
    for (const pid of processesMentioning(this.dir))
      if (!kept.has(pid) && pid !== process.pid) await stopDaemon(pid, this.dir, 1000)
    between()
    const restart = (name: string) => {
      const rec = stopped.find((d) => d.name === name)
      if (!rec) return
      const { pid: _pid, ...spec } = rec
      const started = spawnDaemon(spec)
      this.state.daemons = this.state.daemons.map((d) => (d.name === name ? started : d))
      this.save()
    }
    restart('etcd')
    restart('kube-apiserver')
    await this.waitApiServerReady()
    if (settings) await this.setEngineSettings(settings, { replace: true })
    rmSync(engineActivityFile(this.dir), { force: true })
    rmSync(agentReadyFile(this.dir), { force: true })
    for (const name of ['kube-controller-manager', 'kube-scheduler', 'kwok', 'agent']) restart(name)
    // The engine's start-up round (helm runs, no pods needed) goes on while kwok proves it stays up.
    await Promise.all([
      waitClusterUsable(this, () => undefined),
      waitAgentReady(this).then(() => this.waitEngineQuiet()),
    ])
  }

  /**
   * Waits until the engine simulator has had nothing to do for quietMs: after a restart every cdc observes each of
   * its Compositions once (a helm upgrade on Gen S), as the real ones do on start.
   */
  async waitEngineQuiet(quietMs = 3000, timeoutMs = 180_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      const since = (() => {
        try {
          return (JSON.parse(readFileSync(engineActivityFile(this.dir), 'utf8')) as { quietSince: number | null })
            .quietSince
        } catch {
          return null
        }
      })()
      if (since !== null && Date.now() - since >= quietMs) return
      await sleep(250)
    }
    throw new Error(`the engine simulator was not quiet for ${quietMs / 1000}s within ${timeoutMs / 1000}s`)
  }

  /** A kubeconfig for a user authenticated by a client certificate, with no rights unless RBAC grants them. */
  mintUserKubeconfig(user: string, groups: string[] = []): string {
    const users = join(this.dir, 'users')
    mkdirSync(users, { recursive: true })
    const certs = issueCert(
      users,
      user,
      { cert: this.caFile, key: join(this.pki, 'ca.key') },
      { commonName: user, organizations: groups },
    )
    return writeKubeconfig(join(users, `${user}.kubeconfig`), this.apiServerUrl, this.caFile, user, { certs })
  }

  /** A kubeconfig holding a bound token for a ServiceAccount (created if missing). */
  async mintServiceAccountKubeconfig(namespace: string, serviceAccount: string): Promise<string> {
    await this.apiCreate(`/api/v1/namespaces/${namespace}/serviceaccounts`, { metadata: { name: serviceAccount } })
    const tokenRequest = (await this.apiCreate(
      `/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`,
      { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } },
    )) as { status?: { token?: string } }
    const token = tokenRequest.status?.token
    if (!token) throw new Error(`no token minted for ${namespace}/${serviceAccount}`)
    const users = join(this.dir, 'users')
    mkdirSync(users, { recursive: true })
    return writeKubeconfig(
      join(users, `sa-${namespace}-${serviceAccount}.kubeconfig`),
      this.apiServerUrl,
      this.caFile,
      `system:serviceaccount:${namespace}:${serviceAccount}`,
      { token },
      namespace,
    )
  }

  /** The engine settings and fault knobs as set (the generation's defaults fill what is not). */
  async engineSettings(): Promise<Partial<EngineSettings>> {
    const existing = await this.apiGet(`/api/v1/namespaces/${ENGINE_CONFIG.namespace}/configmaps/${ENGINE_CONFIG.name}`)
    return existing.status === 200
      ? (JSON.parse(
          (JSON.parse(existing.body) as { data?: Record<string, string> }).data?.['config.json'] ?? '{}',
        ) as Partial<EngineSettings>)
      : {}
  }

  /**
   * Merges engine settings and fault knobs into ConfigMap kube-system/krateo-sandbox-engine (read live by the
   * agent); with replace, they are the whole of them.
   */
  async setEngineSettings(settings: Partial<EngineSettings>, { replace = false } = {}): Promise<void> {
    const path = `/api/v1/namespaces/${ENGINE_CONFIG.namespace}/configmaps/${ENGINE_CONFIG.name}`
    const existing = await this.apiGet(path)
    const current = replace ? {} : await this.engineSettings()
    const body = {
      metadata: { name: ENGINE_CONFIG.name, namespace: ENGINE_CONFIG.namespace },
      data: { 'config.json': JSON.stringify({ ...current, ...settings }) },
    }
    const res =
      existing.status === 200
        ? await this.apiRequest('PUT', path, body)
        : await this.apiRequest('POST', `/api/v1/namespaces/${ENGINE_CONFIG.namespace}/configmaps`, body)
    if (res.status >= 400) throw new Error(`engine settings: HTTP ${res.status}: ${res.body}`)
  }

  /** Scales a Deployment: 0 stops a simulated controller (core-provider, a cdc, a provider), 1 starts it. */
  async scaleDeployment(namespace: string, name: string, replicas: number): Promise<void> {
    const res = await this.apiRequest(
      'PATCH',
      `/apis/apps/v1/namespaces/${namespace}/deployments/${name}`,
      { spec: { replicas } },
      'application/merge-patch+json',
    )
    if (res.status >= 400) throw new Error(`scale ${namespace}/${name}: HTTP ${res.status}: ${res.body}`)
  }

  /** Like `kubectl rollout restart`: a restarted cdc lists and observes everything at once. */
  async restartDeployment(namespace: string, name: string): Promise<void> {
    const patch = {
      spec: {
        template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': new Date().toISOString() } } },
      },
    }
    const res = await this.apiRequest(
      'PATCH',
      `/apis/apps/v1/namespaces/${namespace}/deployments/${name}`,
      patch,
      'application/merge-patch+json',
    )
    if (res.status >= 400) throw new Error(`restart ${namespace}/${name}: HTTP ${res.status}: ${res.body}`)
  }

  /** CPU seconds each daemon used (its children's it waited for included: the engine's helm runs). */
  private cpu: Record<string, number> = {}

  private countCpu(daemon: DaemonRecord): void {
    if (isOurs(daemon.pid, this.dir)) this.cpu[daemon.name] = (this.cpu[daemon.name] ?? 0) + cpuSeconds(daemon.pid)
  }

  /**
   * Where the sandbox's CPU went, as one JSON line appended to $KRATEO_SANDBOX_CPU_LOG (npm test sets it and
   * prints the sum): per daemon, and the owning process itself and what it ran (the CLI, helm).
   */
  private reportCpu(): void {
    const log = process.env.KRATEO_SANDBOX_CPU_LOG
    if (!log) return
    const own = Math.round((cpuSeconds(process.pid) - this.ownCpuAtStart) * 100) / 100
    const line = {
      file: process.argv[1] ?? '',
      generation: this.generation,
      engine: this.engineKind,
      seconds: Math.round((Date.now() - Date.parse(this.state.startedAt)) / 1000),
      // The owner (a test process) ran the CLI, and the CLI helm: what they used is the owner's children's.
      cpu: { ...this.cpu, ...(process.pid === this.state.ownerPid ? { 'test process and its CLI runs': own } : {}) },
    }
    try {
      appendFileSync(log, JSON.stringify(line) + '\n')
    } catch {
      /* a measurement, never a failure */
    }
  }

  /** Stops exactly the processes this sandbox started, by pid, and removes its directory. */
  async stop(): Promise<void> {
    // Dependents first, so nothing logs a storm of connection errors on the way down; but the agent last: it is
    // the watchdog that tears the sandbox down should its owner die while stopping it (a test run cut short).
    const order = [
      'kwok',
      'kube-scheduler',
      'kube-controller-manager',
      'registry',
      'registry-private',
      'kube-apiserver',
      'etcd',
      'agent',
    ]
    const byOrder = [...this.state.daemons].sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name))
    for (const daemon of byOrder) this.countCpu(daemon)
    this.reportCpu()
    for (const daemon of byOrder) await stopDaemon(daemon.pid, this.dir, stopGraceMs(daemon.name))
    // Anything a daemon forked (a helm run of the simulator, say) also names the directory.
    for (const pid of processesMentioning(this.dir)) await stopDaemon(pid, this.dir, 1000)
    rmSync(this.dir, { recursive: true, force: true })
    releasePorts(this.dir)
  }
}

/**
 * How long a daemon may take to stop when the sandbox stops or restarts as a whole. kube-apiserver keeps no state
 * (etcd, stopped after it, does) yet spends 5 s draining connections on SIGTERM: here it has only a moment.
 * restartApiServer, an outage a client lives through, keeps the graceful stop.
 */
const stopGraceMs = (name: string): number | undefined => (name === 'kube-apiserver' ? 200 : undefined)

export function loadSandbox(dir: string): Sandbox {
  const state = JSON.parse(readFileSync(join(dir, STATE_FILE), 'utf8')) as SandboxState
  return new Sandbox(state)
}

export function sandboxIsRunning(dir: string): boolean {
  if (!existsSync(join(dir, STATE_FILE))) return false
  const sandbox = loadSandbox(dir)
  return sandbox.state.daemons.some((d) => isOurs(d.pid, dir))
}

/** The real engine's binaries and the warmed crdgen cache, built by build.sh (`engine`) the first time. */
function ensureRealEngine(log: (m: string) => void): void {
  const missing = () => [...Object.values(realEngineBinaries()), crdgenCache().mod].filter((p) => !fileExists(p))
  if (missing().length === 0) return
  log(`building the real engine into ${cacheDir()} (first time only)`)
  const result = spawnSync('bash', [join(sandboxDir, 'build.sh'), 'engine'], {
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  if (missing().length > 0)
    throw new Error(`real engine binaries missing after build (exit ${result.status}): ${missing().join(', ')}`)
}

export async function startSandbox(opts: StartOptions = {}): Promise<Sandbox> {
  const log = opts.log ?? (() => undefined)
  const bins = ensureBinaries(log)
  if ((opts.engineKind ?? defaultEngineKind()) === 'real' && opts.agent !== false && opts.engine !== false)
    ensureRealEngine(log)
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'krateo-sandbox-'))
  if (opts.dir) {
    if (sandboxIsRunning(dir)) throw new Error(`a sandbox is already running in ${dir}; stop it first`)
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir, { recursive: true })
  }
  try {
    return await bringUp(dir, bins, opts, log)
  } catch (err) {
    // Never leave a half-started sandbox behind.
    for (const pid of processesMentioning(dir)) await stopDaemon(pid, dir, 1000)
    if (!process.env.KRATEO_SANDBOX_KEEP_FAILED) rmSync(dir, { recursive: true, force: true })
    throw err
  }
}

async function bringUp(dir: string, bins: Binaries, opts: StartOptions, log: (m: string) => void): Promise<Sandbox> {
  const pki = join(dir, 'pki')
  const logs = join(dir, 'logs')
  for (const d of [pki, logs, join(dir, 'etcd'), join(dir, 'registry'), join(dir, 'kubeconfigs')])
    mkdirSync(d, { recursive: true })

  const [etcd, etcdPeer, apiserver, controllerManager, scheduler, kwok, registry, engineWebhook] = await claimPorts(
    8,
    dir,
  )
  const ports: SandboxState['ports'] = {
    etcd: etcd!,
    etcdPeer: etcdPeer!,
    apiserver: apiserver!,
    controllerManager: controllerManager!,
    scheduler: scheduler!,
    kwok: kwok!,
    registry: registry!,
    engineWebhook: engineWebhook!,
  }

  const imagesDir = shareableImages(opts)
  const registrySlot = imagesDir ? await claimRegistryPort(dir) : undefined
  if (registrySlot) ports.registry = registrySlot.port
  const { ca, etcdServer, etcdClient, apiserverServing, admin, kcmCert, schedCert, kwokCert, sa } = registrySlot
    ? sharedClusterPki(pki, imagesDir!)
    : issueClusterPki(pki)

  const server = `https://127.0.0.1:${ports.apiserver}`
  const kc = (name: string, certs: CertPair) =>
    writeKubeconfig(join(dir, 'kubeconfigs', `${name}.kubeconfig`), server, ca.cert, name, { certs })
  const adminKubeconfig = writeKubeconfig(join(dir, 'kubeconfig'), server, ca.cert, 'krateo-sandbox-admin', {
    certs: admin,
  })
  const kcmKubeconfig = kc('kube-controller-manager', kcmCert)
  const schedKubeconfig = kc('kube-scheduler', schedCert)
  const kwokKubeconfig = kc('kwok', kwokCert)

  const generation = opts.generation ?? opts.engineSettings?.generation ?? defaultGeneration()
  const engineKind = opts.engineKind ?? defaultEngineKind()
  const real = engineKind === 'real' && opts.agent !== false && opts.engine !== false
  if (real && generation !== 'S')
    throw new Error('the real engine is Gen S only (core-provider 0.26.1); Gen N stays simulated')
  // The real core-provider pulls charts over HTTPS only and from a host without a port (real-engine.md):
  // TLS on port 443 of a loopback address of this sandbox's own.
  const registryHost = real ? await freeLoopbackFor443() : undefined
  if (real) {
    await assertPortsFree(REAL_ENGINE_FIXED_PORTS)
    ;[ports.serviceProxy] = await claimPorts(1, dir)
  }
  const state: SandboxState = {
    name: opts.name ?? 'sandbox',
    dir,
    startedAt: new Date().toISOString(),
    ports,
    kubeconfig: adminKubeconfig,
    registry: registryHost ?? `127.0.0.1:${ports.registry}`,
    helm: bins.helm3,
    helm4: fileExists(bins.helm4) ? bins.helm4 : null,
    ownerPid: opts.ownerPid ?? null,
    engine: opts.agent !== false && opts.engine !== false,
    engineKind: real ? 'real' : 'sim',
    registryTls: real,
    generation,
    charts: [],
    daemons: [],
    ...(registrySlot ? { images: imagesDir } : {}),
  }
  const sandbox = new Sandbox(state)
  const start = (name: string, bin: string, args: string[], env?: Record<string, string>) => {
    // The control plane's Go processes collect garbage a quarter as often: a throw-away cluster has memory to spare
    // and its tests are short of CPU (kube-apiserver spent about a sixth of its CPU in the collector).
    const rec = spawnDaemon({ name, bin, args, log: join(logs, `${name}.log`), env: { GOGC: SANDBOX_GOGC, ...env } })
    state.daemons.push(rec)
    sandbox.save()
    return rec
  }

  log('starting etcd and kube-apiserver')
  start('etcd', bins.etcd, [
    '--name=sandbox',
    `--data-dir=${join(dir, 'etcd')}`,
    `--listen-client-urls=https://127.0.0.1:${ports.etcd}`,
    `--advertise-client-urls=https://127.0.0.1:${ports.etcd}`,
    `--listen-peer-urls=http://127.0.0.1:${ports.etcdPeer}`,
    `--initial-advertise-peer-urls=http://127.0.0.1:${ports.etcdPeer}`,
    `--initial-cluster=sandbox=http://127.0.0.1:${ports.etcdPeer}`,
    `--cert-file=${etcdServer.cert}`,
    `--key-file=${etcdServer.key}`,
    `--trusted-ca-file=${ca.cert}`,
    '--client-cert-auth',
    // Throw-away data: skipping fsync makes every write (and so every test) much faster.
    '--unsafe-no-fsync',
    '--log-level=warn',
  ])
  start('kube-apiserver', bins.kubeApiserver, [
    `--etcd-servers=https://127.0.0.1:${ports.etcd}`,
    `--etcd-cafile=${ca.cert}`,
    `--etcd-certfile=${etcdClient.cert}`,
    `--etcd-keyfile=${etcdClient.key}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--secure-port=${ports.apiserver}`,
    `--tls-cert-file=${apiserverServing.cert}`,
    `--tls-private-key-file=${apiserverServing.key}`,
    `--client-ca-file=${ca.cert}`,
    `--cert-dir=${join(dir, 'apiserver-certs')}`,
    `--service-account-key-file=${sa.pub}`,
    `--service-account-signing-key-file=${sa.key}`,
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    '--service-cluster-ip-range=10.96.0.0/16',
    '--authorization-mode=RBAC',
    '--anonymous-auth=false',
    // The Endpoints of the kubernetes Service may not hold a loopback address; nothing here needs them.
    '--endpoint-reconciler-type=none',
    '--profiling=false',
    '--v=0',
    ...(opts.audit ? auditFlags(dir) : []),
    ...(real ? [`--egress-selector-config-file=${egressSelectorConfig(sandbox)}`] : []),
  ])
  await sandbox.waitApiServerReady()
  log(`kube-apiserver ready on ${server}`)

  const componentAuth = (kubeconfig: string) => [
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
  ]
  start('kube-controller-manager', bins.kubeControllerManager, [
    ...componentAuth(kcmKubeconfig),
    '--bind-address=127.0.0.1',
    `--secure-port=${ports.controllerManager}`,
    '--leader-elect=false',
    `--service-account-private-key-file=${sa.key}`,
    `--root-ca-file=${ca.cert}`,
    `--cluster-signing-cert-file=${ca.cert}`,
    `--cluster-signing-key-file=${ca.key}`,
    '--use-service-account-credentials=true',
    // Not the controllers nothing here uses: the quota controller watches every kind, CRDs included, as the
    // garbage collector does, and re-reads discovery whenever a CRD comes or goes (each install adds fourteen).
    '--controllers=*,-resourcequota,-horizontalpodautoscaling,-disruption,-cronjob,-replicationcontroller',
    `--cert-dir=${join(dir, 'kcm-certs')}`,
    '--v=0',
  ])
  start('kube-scheduler', bins.kubeScheduler, [
    ...componentAuth(schedKubeconfig),
    '--bind-address=127.0.0.1',
    `--secure-port=${ports.scheduler}`,
    '--leader-elect=false',
    `--cert-dir=${join(dir, 'scheduler-certs')}`,
    '--v=0',
  ])
  start('kwok', bins.kwok, [
    `--kubeconfig=${kwokKubeconfig}`,
    `--config=${join(sandboxDir, 'kwok-stages.yaml')}`,
    '--manage-all-nodes=false',
    '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
    '--cidr=10.244.0.0/16',
    '--node-ip=10.244.0.1',
    `--server-address=127.0.0.1:${ports.kwok}`,
  ])
  const registryConfig = join(dir, 'registry.yaml')
  writeFileSync(
    registryConfig,
    stringify({
      version: 0.1,
      log: { level: 'warn' },
      storage: { filesystem: { rootdirectory: join(dir, 'registry') }, delete: { enabled: true } },
      http: {
        addr: registryHost ? `${registryHost}:443` : `127.0.0.1:${ports.registry}`,
        secret: Math.random().toString(36).slice(2),
        ...(registryHost ? { tls: registryCert(pki, ca, registryHost) } : {}),
      },
    }),
  )
  start('registry', bins.registry, ['serve', registryConfig], {
    OTEL_SDK_DISABLED: 'true',
    OTEL_TRACES_EXPORTER: 'none',
  })
  if (opts.privateRegistry) {
    const [port] = (await claimPorts(1, dir)) as [number]
    const root = join(dir, 'registry-private')
    mkdirSync(root, { recursive: true })
    writeFileSync(
      join(root, 'htpasswd'),
      `${opts.privateRegistry.username}:${bcrypt.hashSync(opts.privateRegistry.password, 10)}\n`,
      { mode: 0o600 },
    )
    const config = join(root, 'registry.yaml')
    writeFileSync(
      config,
      stringify({
        version: 0.1,
        log: { level: 'warn' },
        storage: { filesystem: { rootdirectory: join(root, 'data') } },
        http: { addr: `127.0.0.1:${port}`, secret: Math.random().toString(36).slice(2) },
        auth: { htpasswd: { realm: 'krateo-sandbox', path: join(root, 'htpasswd') } },
      }),
    )
    start('registry-private', bins.registry, ['serve', config], {
      OTEL_SDK_DISABLED: 'true',
      OTEL_TRACES_EXPORTER: 'none',
    })
    state.privateRegistry = `127.0.0.1:${port}`
    sandbox.save()
  }

  await createFakeNode(sandbox)
  await sandbox.setEngineSettings({ ...opts.engineSettings, generation })
  if (opts.agent !== false) {
    start('agent', process.execPath, ['--import', 'tsx', join(sandboxDir, 'agent.ts'), dir], { NODE_NO_WARNINGS: '1' })
  }
  await waitRegistry(sandbox)
  const published =
    opts.charts !== false
      ? publishFixtureCharts(
          sandbox.helm,
          sandbox.helmEnv(),
          sandbox.registry,
          opts.privateRegistry && state.privateRegistry
            ? { registry: state.privateRegistry, ...opts.privateRegistry }
            : undefined,
          real ? { caFile: ca.cert, realBootstrap: true } : undefined,
        ).then((charts) => {
          state.charts = charts
          sandbox.save()
          log(`${charts.length} fixture charts pushed to oci://${sandbox.registry}/charts`)
        })
      : Promise.resolve()
  await Promise.all([published, waitClusterUsable(sandbox, log), waitAgentReady(sandbox)])
  log('sandbox ready')
  return sandbox
}

/** The cluster's CA, serving and client certificates and ServiceAccount key, issued into dir. */
function issueClusterPki(pki: string) {
  const ca = createCA(pki)
  const loopback = { ipSANs: ['127.0.0.1'], dnsSANs: ['localhost'] }
  const etcdServer = issueCert(pki, 'etcd-server', ca, { commonName: 'etcd', ...loopback })
  const etcdClient = issueCert(pki, 'apiserver-etcd-client', ca, { commonName: 'kube-apiserver-etcd-client' })
  const apiserverServing = issueCert(pki, 'apiserver', ca, {
    commonName: 'kube-apiserver',
    ipSANs: ['127.0.0.1', '10.96.0.1'],
    dnsSANs: [
      'localhost',
      'kubernetes',
      'kubernetes.default',
      'kubernetes.default.svc',
      'kubernetes.default.svc.cluster.local',
    ],
  })
  const clientCert = (name: string, cn: string, groups: string[]): CertPair =>
    issueCert(pki, name, ca, { commonName: cn, organizations: groups })
  const admin = clientCert('admin', 'krateo-sandbox-admin', ['system:masters'])
  const kcmCert = clientCert('kube-controller-manager', 'system:kube-controller-manager', [])
  const schedCert = clientCert('kube-scheduler', 'system:kube-scheduler', [])
  const kwokCert = clientCert('kwok', 'kwok-controller', ['system:masters'])
  const sa = createServiceAccountKey(pki)

  return { ca, etcdServer, etcdClient, apiserverServing, admin, kcmCert, schedCert, kwokCert, sa }
}

/**
 * The test run's one set of certificates and keys (made by the first sandbox, copied by the others): a cluster
 * image holds ServiceAccount tokens and webhook CA bundles, which only the same CA and keys accept.
 */
function sharedClusterPki(pki: string, images: string): ReturnType<typeof issueClusterPki> {
  const shared = join(images, 'pki')
  if (!existsSync(shared)) {
    const draft = mkdtempSync(join(images, 'pki-'))
    issueClusterPki(draft)
    try {
      renameSync(draft, shared)
    } catch {
      rmSync(draft, { recursive: true, force: true }) // another sandbox of the run made it first
    }
  }
  cpSync(shared, pki, { recursive: true })
  const pair = (name: string): CertPair => ({ cert: join(pki, `${name}.crt`), key: join(pki, `${name}.key`) })
  return {
    ca: pair('ca'),
    etcdServer: pair('etcd-server'),
    etcdClient: pair('apiserver-etcd-client'),
    apiserverServing: pair('apiserver'),
    admin: pair('admin'),
    kcmCert: pair('kube-controller-manager'),
    schedCert: pair('kube-scheduler'),
    kwokCert: pair('kwok'),
    sa: { key: join(pki, 'sa.key'), pub: join(pki, 'sa.pub') },
  }
}

/** The run's image directory, when a sandbox started with these options may share cluster images. */
function shareableImages(opts: StartOptions): string | undefined {
  const images = process.env.KRATEO_SANDBOX_IMAGES
  const plain =
    (opts.engineKind ?? defaultEngineKind()) === 'sim' &&
    opts.agent !== false &&
    opts.engine !== false &&
    opts.charts !== false &&
    !opts.privateRegistry &&
    !opts.audit
  return images && plain && existsSync(images) ? images : undefined
}

/**
 * Registry ports of a test run: an image's Compositions and definitions name their charts' registry, so a sandbox
 * restores only the images made on its own registry address. Fixed, below the range other ports are claimed from
 * (ports.ts), each held by one sandbox at a time.
 */
const IMAGE_REGISTRY_PORTS = Array.from({ length: 12 }, (_, i) => claimRange()[0] - 100 + i)

async function claimRegistryPort(dir: string): Promise<{ port: number } | undefined> {
  for (const port of IMAGE_REGISTRY_PORTS) if (await claimPort(port, dir)) return { port }
  return undefined
}

/** CPU seconds of a process and of its children it waited for (Linux /proc; 0 when it is gone). */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // utime, stime, cutime, cstime (fields 14-17 of proc(5)), in clock ticks of 1/100 s.
    return [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i] ?? 0), 0) / 100
  } catch {
    return 0
  }
}

/** Where the engine simulator says since when it has had nothing to do. */
export function engineActivityFile(dir: string): string {
  return join(dir, 'engine-activity.json')
}

/** Written by the agent once its webhooks are registered and its controllers run. */
export function agentReadyFile(dir: string): string {
  return join(dir, 'agent-ready')
}

/**
 * Until the agent is up: before it registered its /pods webhook, a pod was created unbound and ran on kwok (a
 * real-engine sandbox under load then had core-provider as a pod that never ran: a full run).
 */
async function waitAgentReady(sandbox: Sandbox, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!existsSync(agentReadyFile(sandbox.dir))) {
    const agent = sandbox.daemon('agent')
    if (!agent) return
    if (!isOurs(agent.pid, sandbox.dir))
      throw new Error(`the sandbox agent exited while starting; its log ends:\n${tailFile(agent.log)}`)
    if (Date.now() > deadline)
      throw new Error(`the sandbox agent did not start in ${timeoutMs / 1000}s; its log ends:\n${tailFile(agent.log)}`)
    await sleep(100)
  }
}

/** The engine a sandbox runs unless told: $KRATEO_SANDBOX_ENGINE (the real lane sets it), else the simulator. */
export function defaultEngineKind(): EngineKind {
  const env = process.env.KRATEO_SANDBOX_ENGINE
  if (!env) return 'sim'
  if (!isEngineKind(env)) throw new Error(`KRATEO_SANDBOX_ENGINE must be sim or real, not "${env}"`)
  return env
}

/** Ports the real core-provider binds on every address (main.go: metrics :8080, webhook :9443): one per machine. */
const REAL_ENGINE_FIXED_PORTS = [8080, 9443]

async function assertPortsFree(portsToCheck: number[]): Promise<void> {
  for (const port of portsToCheck) {
    if (!(await canListen('0.0.0.0', port))) {
      throw new Error(
        `port ${port} is in use: the real core-provider listens on :8080 and :9443, so only one real-engine sandbox runs per machine (stop the other one, or use --engine sim)`,
      )
    }
  }
}

/** A loopback address whose port 443 is free (any 127/8 address works on Linux). */
async function freeLoopbackFor443(): Promise<string> {
  const start = 2 + (process.pid % 200)
  for (let i = 0; i < 250; i++) {
    const host = `127.0.0.${((start + i - 2) % 250) + 2}`
    if (await canListen(host, 443)) return host
  }
  throw new Error(
    'no loopback address with port 443 free for the registry (binding port 443 needs root or CAP_NET_BIND_SERVICE)',
  )
}

function registryCert(pki: string, ca: CertPair, host: string): { certificate: string; key: string } {
  const pair = issueCert(pki, 'registry', ca, { commonName: host, ipSANs: [host] })
  return { certificate: pair.cert, key: pair.key }
}

/** kube-apiserver sends what goes to a Service (webhooks, conversion) through the agent's proxy. */
function egressSelectorConfig(sandbox: Sandbox): string {
  const file = join(sandbox.dir, 'egress-selector.yaml')
  writeFileSync(
    file,
    stringify({
      apiVersion: 'apiserver.k8s.io/v1beta1',
      kind: 'EgressSelectorConfiguration',
      egressSelections: [
        {
          name: 'cluster',
          connection: { proxyProtocol: 'HTTPConnect', transport: { uds: { udsName: sandbox.egressSocket } } },
        },
      ],
    }),
  )
  return file
}

/** The generation a sandbox starts as unless told: $KRATEO_SANDBOX_GENERATION (the test matrix sets it), else S. */
export function defaultGeneration(): GenerationName {
  const env = process.env.KRATEO_SANDBOX_GENERATION
  if (!env) return 'S'
  if (!isGenerationName(env)) throw new Error(`KRATEO_SANDBOX_GENERATION must be S or N, not "${env}"`)
  return env.toUpperCase() as GenerationName
}

function auditFlags(dir: string): string[] {
  const policy = join(dir, 'audit-policy.yaml')
  writeFileSync(
    policy,
    stringify({
      apiVersion: 'audit.k8s.io/v1',
      kind: 'Policy',
      omitStages: ['RequestReceived'],
      rules: [{ level: 'Metadata' }],
    }),
  )
  return [
    `--audit-policy-file=${policy}`,
    `--audit-log-path=${join(dir, 'logs', 'audit.log')}`,
    '--audit-log-format=json',
    '--audit-log-mode=blocking',
  ]
}

/** Requests kube-apiserver served to a user (received at or after `since`), from its audit log. */
export function firstAuditedAt(sandbox: Sandbox, user: string, verb: string, resource: string): string | undefined {
  const text = readFileSync(join(sandbox.dir, 'logs', 'audit.log'), 'utf8')
  for (const line of text.split('\n')) {
    if (!line.includes(`"username":"${user}"`)) continue
    const ev = JSON.parse(line) as { verb: string; objectRef?: { resource?: string }; requestReceivedTimestamp: string }
    if (ev.verb === verb && ev.objectRef?.resource === resource) return ev.requestReceivedTimestamp
  }
  return undefined
}

export function auditedRequests(sandbox: Sandbox, user: string, since?: string): number {
  let n = 0
  let text = ''
  try {
    text = readFileSync(join(sandbox.dir, 'logs', 'audit.log'), 'utf8')
  } catch {
    return 0
  }
  for (const line of text.split('\n')) {
    if (!line.includes(`"username":"${user}"`)) continue
    const ev = JSON.parse(line) as { stage: string; user: { username: string }; requestReceivedTimestamp: string }
    if (since && ev.requestReceivedTimestamp < since) continue
    if (ev.user.username === user && ev.stage === 'ResponseComplete') n++
  }
  return n
}

async function createFakeNode(sandbox: Sandbox): Promise<void> {
  const node = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: FAKE_NODE_NAME,
      annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
      labels: {
        'kubernetes.io/hostname': FAKE_NODE_NAME,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        type: 'kwok',
      },
    },
    spec: {},
  }
  await sandbox.apiCreate('/api/v1/nodes', node)
}

async function waitRegistry(sandbox: Sandbox, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  // The private one answers 401 Unauthorized once it is up.
  const registryUp = async () =>
    sandbox.state.registryTls
      ? (await httpsStatus(`https://${sandbox.registry}/v2/`, {
          ca: sandbox.caFile,
          cert: join(sandbox.dir, 'pki', 'admin.crt'),
          key: join(sandbox.dir, 'pki', 'admin.key'),
        })) === 200
      : (await httpStatus(`http://${sandbox.registry}/v2/`)) === 200
  const up = async () =>
    (await registryUp()) &&
    (!sandbox.privateRegistry || (await httpStatus(`http://${sandbox.privateRegistry}/v2/`)) === 401)
  while (Date.now() < deadline) {
    if (await up()) return
    await sleep(100)
  }
  throw new Error(
    `registry not answering after ${timeoutMs / 1000}s:\n${tailFile(sandbox.daemon('registry')?.log ?? '')}${tailFile(sandbox.daemon('registry-private')?.log ?? '')}`,
  )
}

/** Usable = the fake node is Ready and the default ServiceAccount exists (pods can be admitted). */
async function waitClusterUsable(sandbox: Sandbox, log: (m: string) => void, timeoutMs = 45_000): Promise<void> {
  let deadline = Date.now() + timeoutMs
  let nodeReady = false
  let saReady = false
  let restarts = 0
  // kwok 0.8.0 was seen to die at start-up with a Go fatal error inside its CEL set-up (easycel's registry),
  // under load, after the node was Ready: pods then never ran. A restored image has the node Ready already, so
  // kwok counts as up once it has run for a few seconds; started again (twice at most), with its own deadline.
  let kwokUpSince = Date.now()
  while (Date.now() < deadline) {
    const kwok = sandbox.daemon('kwok')
    if (kwok && !isOurs(kwok.pid, sandbox.dir)) {
      if (restarts++ >= 2) break
      const fatal =
        /^(fatal error|panic): .*$/m.exec(readFileSync(kwok.log, 'utf8'))?.[0] ?? 'no fatal error in its log'
      const { pid: _pid, ...rec } = kwok
      sandbox.state.daemons = sandbox.state.daemons.map((d) => (d === kwok ? spawnDaemon(rec) : d))
      sandbox.save()
      log(`kwok exited while the sandbox started (${fatal}); started it again`)
      kwokUpSince = Date.now()
      deadline = Date.now() + timeoutMs
    }
    if (!nodeReady) {
      const node = await sandbox.apiGet(`/api/v1/nodes/${FAKE_NODE_NAME}`)
      if (node.status === 200) {
        const conditions =
          (JSON.parse(node.body) as { status?: { conditions?: { type: string; status: string }[] } }).status
            ?.conditions ?? []
        nodeReady = conditions.some((c) => c.type === 'Ready' && c.status === 'True')
      }
    }
    if (!saReady) saReady = (await sandbox.apiGet('/api/v1/namespaces/default/serviceaccounts/default')).status === 200
    if (nodeReady && saReady && Date.now() - kwokUpSince >= 3000) {
      // A controller that could not start (its port taken, say) would leave every Deployment waiting unexplained.
      for (const name of ['kube-controller-manager', 'kube-scheduler']) {
        const d = sandbox.daemon(name)
        if (d && !isOurs(d.pid, sandbox.dir))
          throw new Error(`${name} exited while the sandbox started; its log ends:\n${tailFile(d.log)}`)
      }
      return
    }
    await sleep(200)
  }
  const why = !nodeReady
    ? `fake node not Ready (kwok log:\n${tailFile(sandbox.daemon('kwok')?.log ?? '')})`
    : !saReady
      ? `no default ServiceAccount (controller-manager log:\n${tailFile(sandbox.daemon('kube-controller-manager')?.log ?? '')})`
      : `kwok keeps exiting (its log:\n${tailFile(sandbox.daemon('kwok')?.log ?? '')})`
  throw new Error(`cluster not usable after ${timeoutMs / 1000}s: ${why}`)
}
