// A process kubelet for the real engine's pods. The sandbox's /pods webhook binds a pod whose image is one of the
// real engine's to node `process-node-0`; this kubelet runs that pod's container as a local process, the way a
// node would: env and envFrom, ConfigMap/Secret/emptyDir volumes, a ServiceAccount token bound to the pod
// (TokenRequest, refreshed before it expires), status Running/Ready from the process and its probes, restarts with
// back-off (CrashLoopBackOff), SIGTERM and the grace period on delete. Each pod runs in a private mount namespace,
// so the paths its image hard-codes (/tmp, /tmp/assets/*, /var/run/secrets/kubernetes.io/serviceaccount) are its
// own. Pods act as their own ServiceAccount, so RBAC is real. kwok keeps every other pod.
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, copyFileSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { request } from 'node:http'
import { join } from 'node:path'
import { ApiError, Informer, type KObject, type Rest } from '../engine/rest.js'
import { processImage, type ProcessImage } from './images.js'
import { tailFile } from '../lib/processes.js'
import { POD_READY_AT } from '../engine/webhook.js'

export const PROCESS_NODE = 'process-node-0'
const PROCESS_TAINT = 'sandbox.krateo.io/process'

interface EnvVar {
  name: string
  value?: string
  valueFrom?: {
    configMapKeyRef?: { name: string; key: string; optional?: boolean }
    secretKeyRef?: { name: string; key: string; optional?: boolean }
    fieldRef?: { fieldPath: string }
  }
}
interface Probe {
  httpGet?: { path?: string; port: number | string }
  tcpSocket?: { port: number | string }
  periodSeconds?: number
  initialDelaySeconds?: number
}
interface Container {
  name: string
  image?: string
  command?: string[]
  args?: string[]
  env?: EnvVar[]
  envFrom?: {
    prefix?: string
    configMapRef?: { name: string; optional?: boolean }
    secretRef?: { name: string; optional?: boolean }
  }[]
  ports?: { name?: string; containerPort: number }[]
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; subPath?: string }[]
  readinessProbe?: Probe | null
  workingDir?: string
}
interface Volume {
  name: string
  configMap?: { name: string; items?: { key: string; path: string }[]; optional?: boolean }
  secret?: { secretName: string; items?: { key: string; path: string }[]; optional?: boolean }
  emptyDir?: unknown
  projected?: unknown
}
interface PodSpec {
  containers: Container[]
  volumes?: Volume[]
  serviceAccountName?: string
  terminationGracePeriodSeconds?: number
  nodeName?: string
}

const SA_MOUNT = '/var/run/secrets/kubernetes.io/serviceaccount'
const TOKEN_SECONDS = 3600

/** What the process kubelet knows of the sandbox it runs in. */
export interface NodeEnvironment {
  dir: string
  caFile: string
  apiServerPort: number
  /** host:port of the agent's HTTP proxy, through which pods reach *.svc names. */
  proxy: string
}

interface RunningPod {
  key: string
  uid: string
  pod: KObject
  dir: string
  image: ProcessImage
  ip: string
  child?: ChildProcess
  restarts: number
  startedAt?: string
  ready: boolean
  stopping: boolean
  lastExit?: { code: number | null; at: string; message: string }
  timers: NodeJS.Timeout[]
  /** The sandbox's slow-start fault was served (the image "pulled"): later restarts start at once. */
  pulled?: boolean
}

export class ProcessKubelet {
  private pods = new Map<string, RunningPod>()
  private informer: Informer
  private nextIp = 2

  constructor(
    private rest: Rest,
    private env: NodeEnvironment,
    private log: (m: string) => void,
  ) {
    this.informer = new Informer(
      rest,
      `/api/v1/pods?fieldSelector=${encodeURIComponent(`spec.nodeName=${PROCESS_NODE}`)}`,
      (ev, pod) => {
        if (ev === 'delete') void this.gone(pod)
        else void this.sync(pod)
      },
    )
  }

  async start(): Promise<void> {
    await this.registerNode()
    this.informer.start()
    const beat = setInterval(
      () => void this.heartbeat().catch((err) => this.log(`process kubelet: heartbeat: ${(err as Error).message}`)),
      10_000,
    )
    beat.unref()
    process.on('exit', () => {
      for (const p of this.pods.values()) this.kill(p, 'SIGKILL')
    })
  }

  /** The ready pods of the process node, for the service proxy. */
  readyPods(): KObject[] {
    return [...this.pods.values()].filter((p) => p.ready && !p.stopping).map((p) => p.pod)
  }

  private async registerNode(): Promise<void> {
    await this.rest.createOrIgnore('/api/v1/nodes', {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: PROCESS_NODE,
        labels: {
          'kubernetes.io/hostname': PROCESS_NODE,
          'kubernetes.io/os': 'linux',
          'kubernetes.io/arch': 'amd64',
          type: 'process',
        },
      },
      // Only the real engine's pods, which the /pods webhook binds here by name, run here: a DaemonSet's pod
      // must not land on this node (its image has no process).
      spec: { taints: [{ key: PROCESS_TAINT, value: 'true', effect: 'NoSchedule' }] },
    })
    await this.heartbeat()
  }

  private async heartbeat(): Promise<void> {
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
    const ready = {
      type: 'Ready',
      status: 'True',
      reason: 'KubeletReady',
      message: 'sandbox process kubelet is posting ready status',
      lastHeartbeatTime: now,
      lastTransitionTime: now,
    }
    await this.rest.mergePatch(`/api/v1/nodes/${PROCESS_NODE}/status`, {
      status: {
        conditions: [ready],
        addresses: [
          { type: 'InternalIP', address: '127.0.0.1' },
          { type: 'Hostname', address: PROCESS_NODE },
        ],
        allocatable: { cpu: '100', memory: '64Gi', pods: '500' },
        capacity: { cpu: '100', memory: '64Gi', pods: '500' },
        nodeInfo: {
          architecture: 'amd64',
          operatingSystem: 'linux',
          kubeletVersion: 'sandbox-process',
          kubeProxyVersion: '',
          containerRuntimeVersion: 'process://',
          kernelVersion: '',
          osImage: '',
          bootID: '',
          machineID: '',
          systemUUID: '',
        },
      },
    })
    const lease = `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${PROCESS_NODE}`
    const renewTime = new Date().toISOString().replace('Z', '000Z')
    const existing = await this.rest.getOrNull(lease)
    if (existing) await this.rest.mergePatch(lease, { spec: { renewTime } })
    else
      await this.rest.createOrIgnore('/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases', {
        metadata: { name: PROCESS_NODE },
        spec: { holderIdentity: PROCESS_NODE, leaseDurationSeconds: 40, renewTime },
      })
  }

  private async sync(pod: KObject): Promise<void> {
    const key = `${pod.metadata.namespace}/${pod.metadata.name}`
    const running = this.pods.get(key)
    if (running && running.uid !== pod.metadata.uid) await this.stop(running)
    const current = this.pods.get(key)
    if (current) {
      current.pod = pod
      if (pod.metadata.deletionTimestamp && !current.stopping) await this.terminate(current)
      return
    }
    if (pod.metadata.deletionTimestamp) {
      await this.rest
        .delete(podPath(pod), { gracePeriodSeconds: 0, preconditions: { uid: pod.metadata.uid } })
        .catch(() => undefined)
      return
    }
    const spec = pod.spec as unknown as PodSpec
    const container = spec.containers[0]!
    const image = processImage(container.image)
    if (!image) {
      await this.setStatus(pod, {
        phase: 'Pending',
        waiting: { reason: 'ErrImagePull', message: `the sandbox runs no process for image ${container.image}` },
      })
      return
    }
    const dir = join(this.env.dir, 'pods', `${pod.metadata.namespace}_${pod.metadata.name}`)
    const p: RunningPod = {
      key,
      uid: pod.metadata.uid!,
      pod,
      dir,
      image,
      ip: `10.244.255.${(this.nextIp++ % 250) + 2}`,
      restarts: 0,
      ready: false,
      stopping: false,
      timers: [],
    }
    this.pods.set(key, p)
    try {
      await this.prepare(p)
      this.launch(p)
    } catch (err) {
      this.log(`process kubelet: ${key}: cannot start: ${(err as Error).message}`)
      await this.setStatus(pod, {
        phase: 'Pending',
        waiting: { reason: 'CreateContainerConfigError', message: (err as Error).message },
      })
      this.pods.delete(key)
      // Retry as a kubelet does: the missing ConfigMap or Secret may come.
      const retry = setTimeout(() => {
        const live = this.informer.items.get(key)
        if (live && live.metadata.uid === p.uid) void this.sync(live)
      }, 5000)
      retry.unref()
    }
  }

  /** Volumes, the ServiceAccount token and the mount script, in the pod's own directory. */
  private async prepare(p: RunningPod): Promise<void> {
    const { pod } = p
    const ns = pod.metadata.namespace!
    const spec = pod.spec as unknown as PodSpec
    for (const d of ['tmp', 'sa', 'vol']) mkdirSync(join(p.dir, d), { recursive: true })
    for (const volume of spec.volumes ?? []) {
      const target = join(p.dir, 'vol', volume.name)
      mkdirSync(target, { recursive: true })
      if (volume.configMap) {
        const cm = await this.rest.getOrNull(`/api/v1/namespaces/${ns}/configmaps/${volume.configMap.name}`)
        if (!cm && !volume.configMap.optional) throw new Error(`configmap "${volume.configMap.name}" not found`)
        writeKeys(target, (cm?.data ?? {}) as Record<string, string>, volume.configMap.items)
      } else if (volume.secret) {
        const secret = await this.rest.getOrNull(`/api/v1/namespaces/${ns}/secrets/${volume.secret.secretName}`)
        if (!secret && !volume.secret.optional) throw new Error(`secret "${volume.secret.secretName}" not found`)
        const data = Object.fromEntries(
          Object.entries((secret?.data ?? {}) as Record<string, string>).map(([k, v]) => [
            k,
            Buffer.from(v, 'base64').toString(),
          ]),
        )
        writeKeys(target, data, volume.secret.items)
      }
    }
    copyFileSync(this.env.caFile, join(p.dir, 'sa', 'ca.crt'))
    writeFileSync(join(p.dir, 'sa', 'namespace'), ns)
    // The CA bundle the pod trusts: the system's and the sandbox's (the registry's TLS is issued by it).
    writeFileSync(
      join(p.dir, 'ca-bundle.crt'),
      `${readFileSync('/etc/ssl/certs/ca-certificates.crt', 'utf8')}\n${readFileSync(this.env.caFile, 'utf8')}`,
    )
    await this.refreshToken(p)
  }

  /** A token bound to this pod (it dies with the pod), rewritten at 80 % of its life as the kubelet does. */
  private async refreshToken(p: RunningPod): Promise<void> {
    const { pod } = p
    const sa = (pod.spec as unknown as PodSpec).serviceAccountName ?? 'default'
    const res = await this.rest.create<{ status: { token: string } }>(
      `/api/v1/namespaces/${pod.metadata.namespace}/serviceaccounts/${sa}/token`,
      {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: {
          expirationSeconds: TOKEN_SECONDS,
          boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name, uid: pod.metadata.uid },
        },
      },
    )
    const file = join(p.dir, 'sa', 'token')
    writeFileSync(`${file}.new`, res.status.token, { mode: 0o600 })
    renameSync(`${file}.new`, file)
    const timer = setTimeout(() => {
      if (!this.pods.has(p.key) || p.stopping) return
      void this.refreshToken(p).catch((err) =>
        this.log(`process kubelet: ${p.key}: token refresh: ${(err as Error).message}`),
      )
    }, TOKEN_SECONDS * 800)
    timer.unref()
    p.timers.push(timer)
  }

  private async containerEnv(p: RunningPod, c: Container): Promise<Record<string, string>> {
    const ns = p.pod.metadata.namespace!
    const env: Record<string, string> = {}
    const cms = new Map<string, Record<string, string> | null>()
    const configMap = async (name: string) => {
      if (!cms.has(name))
        cms.set(
          name,
          ((await this.rest.getOrNull(`/api/v1/namespaces/${ns}/configmaps/${name}`))?.data ?? null) as Record<
            string,
            string
          > | null,
        )
      return cms.get(name)!
    }
    const secret = async (name: string) => {
      const s = await this.rest.getOrNull(`/api/v1/namespaces/${ns}/secrets/${name}`)
      return s
        ? Object.fromEntries(
            Object.entries((s.data ?? {}) as Record<string, string>).map(([k, v]) => [
              k,
              Buffer.from(v, 'base64').toString(),
            ]),
          )
        : null
    }
    for (const from of c.envFrom ?? []) {
      const ref = from.configMapRef ?? from.secretRef
      if (!ref) continue
      const data = from.configMapRef ? await configMap(ref.name) : await secret(ref.name)
      if (!data && !ref.optional)
        throw new Error(`${from.configMapRef ? 'configmap' : 'secret'} "${ref.name}" not found`)
      for (const [k, v] of Object.entries(data ?? {})) env[`${from.prefix ?? ''}${k}`] = v
    }
    for (const e of c.env ?? []) {
      if (e.value !== undefined) env[e.name] = e.value
      else if (e.valueFrom?.configMapKeyRef) {
        const v = (await configMap(e.valueFrom.configMapKeyRef.name))?.[e.valueFrom.configMapKeyRef.key]
        if (v === undefined && !e.valueFrom.configMapKeyRef.optional)
          throw new Error(
            `configmap key ${e.valueFrom.configMapKeyRef.name}/${e.valueFrom.configMapKeyRef.key} not found`,
          )
        if (v !== undefined) env[e.name] = v
      } else if (e.valueFrom?.secretKeyRef) {
        const v = (await secret(e.valueFrom.secretKeyRef.name))?.[e.valueFrom.secretKeyRef.key]
        if (v === undefined && !e.valueFrom.secretKeyRef.optional)
          throw new Error(`secret key ${e.valueFrom.secretKeyRef.name}/${e.valueFrom.secretKeyRef.key} not found`)
        if (v !== undefined) env[e.name] = v
      } else if (e.valueFrom?.fieldRef) {
        const fields: Record<string, string | undefined> = {
          'metadata.name': p.pod.metadata.name,
          'metadata.namespace': ns,
          'metadata.uid': p.uid,
          'status.podIP': p.ip,
          'status.hostIP': '127.0.0.1',
          'spec.nodeName': PROCESS_NODE,
          'spec.serviceAccountName': (p.pod.spec as unknown as PodSpec).serviceAccountName ?? 'default',
        }
        env[e.name] = fields[e.valueFrom.fieldRef.fieldPath] ?? ''
      }
    }
    return env
  }

  /** Starts (or restarts) the pod's container process. */
  private launch(p: RunningPod): void {
    void (async () => {
      const c = (p.pod.spec as unknown as PodSpec).containers[0]!
      if (await this.pulling(p)) return
      let env: Record<string, string>
      try {
        env = await this.containerEnv(p, c)
      } catch (err) {
        await this.setStatus(p.pod, {
          phase: 'Pending',
          waiting: { reason: 'CreateContainerConfigError', message: (err as Error).message },
        })
        const t = setTimeout(() => {
          if (this.pods.get(p.key) === p && !p.stopping) this.launch(p)
        }, 5000)
        t.unref()
        p.timers.push(t)
        return
      }
      const script = join(p.dir, 'run.sh')
      writeFileSync(script, mountScript(p, c))
      const logFile = join(this.env.dir, 'logs', 'pods', `${p.pod.metadata.namespace}_${p.pod.metadata.name}.log`)
      mkdirSync(join(this.env.dir, 'logs', 'pods'), { recursive: true })
      const fd = openSync(logFile, 'a')
      // Not root here: a user namespace lets an unprivileged user make the mounts (needs unprivileged userns).
      const userns = process.getuid?.() === 0 ? [] : ['--user', '--map-root-user']
      const child = spawn('unshare', [...userns, '--mount', '--propagation', 'private', 'bash', script], {
        detached: true,
        stdio: ['ignore', fd, fd],
        env: {
          HOME: '/tmp',
          HOSTNAME: p.pod.metadata.name,
          ...p.image.env,
          KUBERNETES_SERVICE_HOST: '127.0.0.1',
          KUBERNETES_SERVICE_PORT: String(this.env.apiServerPort),
          HTTP_PROXY: `http://${this.env.proxy}`,
          HTTPS_PROXY: `http://${this.env.proxy}`,
          http_proxy: `http://${this.env.proxy}`,
          https_proxy: `http://${this.env.proxy}`,
          NO_PROXY: '127.0.0.0/8,localhost',
          no_proxy: '127.0.0.0/8,localhost',
          SSL_CERT_FILE: '/run/pod/ca-bundle.crt',
          ...env,
        },
      })
      closeSync(fd)
      p.child = child
      p.startedAt = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
      p.ready = false
      this.log(`process kubelet: ${p.key} started (pid ${child.pid}, ${c.image}, log ${logFile})`)
      child.on('error', (err) => this.log(`process kubelet: ${p.key}: ${err.message}`))
      child.on('exit', (code, signal) => void this.exited(p, child, code, signal, logFile))
      await this.setStatus(p.pod, { phase: 'Running', running: true, ready: false, p })
      this.probe(p, child, c)
    })().catch((err) => this.log(`process kubelet: ${p.key}: ${(err as Error).message}`))
  }

  /**
   * The sandbox's slow-start fault (`readinessDelaySeconds`, stamped on the pod as it is created): the process starts
   * at that time, as after a slow image pull, so a test can act while a helm --wait waits on this pod.
   */
  private async pulling(p: RunningPod): Promise<boolean> {
    const wait = Date.parse(p.pod.metadata.annotations?.[POD_READY_AT] ?? '') - Date.now()
    if (p.pulled || !(wait > 0)) return false
    p.pulled = true
    await this.setStatus(p.pod, {
      phase: 'Pending',
      waiting: { reason: 'ContainerCreating', message: "pulling the image (the sandbox's slow-start fault)" },
    })
    const t = setTimeout(() => {
      if (this.pods.get(p.key) === p && !p.stopping) this.launch(p)
    }, wait)
    t.unref()
    p.timers.push(t)
    return true
  }

  /** Ready once the readiness probe answers (a pod without one: once its process has run a second). */
  private probe(p: RunningPod, child: ChildProcess, c: Container): void {
    const probe = c.readinessProbe ?? null
    const port = (ref: number | string) =>
      typeof ref === 'number' ? ref : (c.ports?.find((cp) => cp.name === ref)?.containerPort ?? Number(ref))
    const check = (): Promise<boolean> => {
      if (probe?.httpGet) {
        return new Promise((resolve) => {
          const req = request(
            { host: '127.0.0.1', port: port(probe.httpGet!.port), path: probe.httpGet!.path ?? '/', timeout: 1000 },
            (res) => {
              res.resume()
              resolve((res.statusCode ?? 0) < 400)
            },
          )
          req.on('error', () => resolve(false))
          req.on('timeout', () => {
            req.destroy()
            resolve(false)
          })
          req.end()
        })
      }
      if (probe?.tcpSocket) {
        return new Promise((resolve) => {
          const s = connect(port(probe.tcpSocket!.port), '127.0.0.1', () => {
            s.destroy()
            resolve(true)
          })
          s.on('error', () => resolve(false))
        })
      }
      return Promise.resolve(true)
    }
    const tick = async () => {
      if (p.child !== child || child.exitCode !== null || p.stopping) return
      const ok = await check()
      if (p.child !== child || child.exitCode !== null || p.stopping) return
      // Ready once the API has it (a failed write is tried again at the next probe).
      if (
        ok !== p.ready &&
        (await this.setStatus(p.pod, { phase: 'Running', running: true, ready: ok, p }).then(
          () => true,
          () => false,
        ))
      )
        p.ready = ok
      const t = setTimeout(() => void tick(), (p.ready ? (probe?.periodSeconds ?? 10) : 1) * 1000)
      t.unref()
      p.timers.push(t)
    }
    const first = setTimeout(() => void tick(), Math.max(1, probe?.initialDelaySeconds ?? 1) * 1000)
    first.unref()
    p.timers.push(first)
  }

  private async exited(
    p: RunningPod,
    child: ChildProcess,
    code: number | null,
    signal: NodeJS.Signals | null,
    logFile: string,
  ): Promise<void> {
    if (p.child !== child) return
    p.child = undefined
    p.ready = false
    if (p.stopping || this.pods.get(p.key) !== p) return
    p.restarts++
    const message = tailFile(logFile, 3)
    p.lastExit = { code, at: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), message }
    const backoff = Math.min(10 * 2 ** (p.restarts - 1), 300)
    this.log(`process kubelet: ${p.key} exited (${signal ?? `code ${code}`}); restart ${p.restarts} in ${backoff}s`)
    await this.setStatus(p.pod, {
      phase: 'Running',
      waiting: { reason: 'CrashLoopBackOff', message: `back-off ${backoff}s restarting failed container` },
      p,
    }).catch(() => undefined)
    const t = setTimeout(() => {
      if (this.pods.get(p.key) === p && !p.stopping) this.launch(p)
    }, backoff * 1000)
    t.unref()
    p.timers.push(t)
  }

  /** A pod being deleted: SIGTERM, the grace period, SIGKILL, then the pod object goes (uid-guarded). */
  private async terminate(p: RunningPod): Promise<void> {
    const grace = (p.pod.spec as unknown as PodSpec).terminationGracePeriodSeconds ?? 30
    await this.stop(p, grace * 1000)
    await this.rest.delete(podPath(p.pod), { gracePeriodSeconds: 0, preconditions: { uid: p.uid } }).catch((err) => {
      if (!(err instanceof ApiError && (err.status === 404 || err.status === 409)))
        this.log(`process kubelet: ${p.key}: ${(err as Error).message}`)
    })
  }

  private async gone(pod: KObject): Promise<void> {
    const p = this.pods.get(`${pod.metadata.namespace}/${pod.metadata.name}`)
    if (p && p.uid === pod.metadata.uid) await this.stop(p, 0)
  }

  private async stop(p: RunningPod, graceMs = 0): Promise<void> {
    p.stopping = true
    p.ready = false
    for (const t of p.timers) clearTimeout(t)
    const child = p.child
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      this.kill(p, graceMs ? 'SIGTERM' : 'SIGKILL')
      const timer = new Promise<void>((resolve) => {
        const t = setTimeout(resolve, graceMs || 5000)
        t.unref()
      })
      await Promise.race([exited, timer])
      if (child.exitCode === null && child.signalCode === null) {
        this.kill(p, 'SIGKILL')
        await exited
      }
    }
    if (this.pods.get(p.key) === p) this.pods.delete(p.key)
    rmSync(p.dir, { recursive: true, force: true })
    this.log(`process kubelet: ${p.key} stopped`)
  }

  private kill(p: RunningPod, signal: NodeJS.Signals): void {
    const pid = p.child?.pid
    if (!pid) return
    // The whole process group: core-provider's `go run` children go with it.
    try {
      process.kill(-pid, signal)
    } catch {
      try {
        process.kill(pid, signal)
      } catch {
        /* gone */
      }
    }
  }

  private async setStatus(
    pod: KObject,
    s: {
      phase: string
      running?: boolean
      ready?: boolean
      waiting?: { reason: string; message: string }
      p?: RunningPod
    },
  ): Promise<void> {
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
    const ready = s.ready ? 'True' : 'False'
    const c = (pod.spec as unknown as PodSpec).containers[0]!
    const p = s.p
    const containerStatus = {
      name: c.name,
      image: c.image,
      imageID: c.image,
      ready: !!s.ready,
      restartCount: p?.restarts ?? 0,
      started: !!s.running,
      state: s.running ? { running: { startedAt: p?.startedAt ?? now } } : { waiting: s.waiting },
      lastState: p?.lastExit
        ? {
            terminated: {
              exitCode: p.lastExit.code ?? 137,
              reason: 'Error',
              message: p.lastExit.message,
              finishedAt: p.lastExit.at,
            },
          }
        : {},
    }
    await this.rest
      .mergePatch(`${podPath(pod)}/status`, {
        status: {
          phase: s.phase,
          hostIP: '127.0.0.1',
          hostIPs: [{ ip: '127.0.0.1' }],
          ...(p ? { podIP: p.ip, podIPs: [{ ip: p.ip }] } : {}),
          startTime: pod.metadata.creationTimestamp,
          conditions: [
            { type: 'PodScheduled', status: 'True', lastTransitionTime: pod.metadata.creationTimestamp },
            { type: 'Initialized', status: 'True', lastTransitionTime: pod.metadata.creationTimestamp },
            { type: 'ContainersReady', status: ready, lastTransitionTime: now },
            { type: 'Ready', status: ready, lastTransitionTime: now },
          ],
          containerStatuses: [containerStatus],
        },
      })
      .catch((err) => {
        if (!(err instanceof ApiError && err.status === 404)) throw err
      })
  }
}

function podPath(pod: KObject): string {
  return `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}`
}

function writeKeys(dir: string, data: Record<string, string>, items?: { key: string; path: string }[]): void {
  const entries = items ? items.map((i) => [i.path, data[i.key] ?? ''] as const) : Object.entries(data)
  for (const [path, content] of entries) {
    const file = join(dir, path)
    mkdirSync(join(file, '..'), { recursive: true })
    writeFileSync(file, content)
  }
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`

/**
 * The container's private file system view, made inside its own mount namespace: /run is a fresh tmpfs holding
 * the pod's directory, /tmp is the pod's own, the ServiceAccount files sit at the fixed in-cluster path, and each
 * volume at its mountPath. Only paths under /tmp and /run are created; a mount elsewhere must already exist.
 * The process's argv[0] names the pod's directory, so the sandbox finds (and stops) it like its other daemons.
 */
function mountScript(p: RunningPod, c: Container): string {
  const lines = [
    'set -eu',
    'mount -t tmpfs tmpfs /run',
    'mkdir -p /run/pod',
    `mount --bind ${shellQuote(p.dir)} /run/pod`,
    'mount --bind /run/pod/tmp /tmp',
    `mkdir -p ${SA_MOUNT.replace('/var/run', '/run')}`,
    `mount --bind /run/pod/sa ${SA_MOUNT.replace('/var/run', '/run')}`,
  ]
  for (const m of c.volumeMounts ?? []) {
    if (m.mountPath === SA_MOUNT) continue
    const path = m.mountPath.startsWith('/var/run/') ? m.mountPath.replace('/var/run', '/run') : m.mountPath
    const source = `/run/pod/vol/${m.name}${m.subPath ? `/${m.subPath}` : ''}`
    if (path.startsWith('/tmp/') || path.startsWith('/run/')) lines.push(`mkdir -p ${shellQuote(path)}`)
    lines.push(`mount --bind ${shellQuote(source)} ${shellQuote(path)}`)
    if (m.readOnly) lines.push(`mount -o remount,bind,ro ${shellQuote(path)}`)
  }
  lines.push(`cd ${shellQuote(c.workingDir ?? '/tmp')}`)
  const argv = [...(c.command?.slice(1) ?? []), ...(c.args ?? [])]
  lines.push(
    `exec -a ${shellQuote(join(p.dir, c.name))} ${shellQuote(p.image.binary)} ${argv.map(shellQuote).join(' ')}`,
  )
  return `${lines.join('\n')}\n`
}
