// Shared test plumbing: one sandbox per test file, owned by the test process so that even a crashed
// run leaves no daemon behind (the sandbox agent watches the owner pid).
import { execFileSync } from 'node:child_process'
import { cpSync } from 'node:fs'
import { basename, join } from 'node:path'
import { after, before } from 'node:test'
import {
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  ApiextensionsV1Api,
  KubeConfig,
  RbacAuthorizationV1Api,
} from '@kubernetes/client-node'
import {
  defaultEngineKind,
  defaultGeneration,
  startSandbox,
  type Sandbox,
  type StartOptions,
} from '../../sandbox/lib/sandbox.js'

/** The engine generation this test process runs against ($KRATEO_SANDBOX_GENERATION; the test matrix sets it). */
export const GEN = defaultGeneration()
/** The engine this test process runs against ($KRATEO_SANDBOX_ENGINE: the simulator, or the real Gen S one). */
export const ENGINE = defaultEngineKind()

/** A suite's title with the generation it ran against, when not the default S. */
export function onGeneration(title: string): string {
  if (ENGINE === 'real') return `${title} [real engine]`
  return GEN === 'S' ? title : `${title} [Gen ${GEN}]`
}

export interface Kube {
  kc: KubeConfig
  core: CoreV1Api
  apps: AppsV1Api
  batch: BatchV1Api
  custom: CustomObjectsApi
  crds: ApiextensionsV1Api
  rbac: RbacAuthorizationV1Api
}

export function kubeFor(kubeconfig: string): Kube {
  // No shared keep-alive connections here, unlike the CLI: a test blocking its event loop (execFileSync of a helm
  // run) past the API server's idle close would send its next request on a connection already closed.
  const kc = new KubeConfig()
  kc.loadFromFile(kubeconfig)
  return {
    kc,
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    batch: kc.makeApiClient(BatchV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
    crds: kc.makeApiClient(ApiextensionsV1Api),
    rbac: kc.makeApiClient(RbacAuthorizationV1Api),
  }
}

/**
 * The engine resync the CLI tests run with: the generation's own (S 180 s, N 60 s). A Gen S cdc runs helm upgrade
 * at every resync, as the real one does: an installed platform's 14 cdcs cost about 10 s of CPU per round, so a
 * shorter resync only burns the suite's CPU (at 5 s they keep two cores busy). The CLI nudges what it waits for
 * (a watched annotation), so its tests need no short resync; tests of the engine's own timing set theirs.
 */
export const TEST_RESYNC_SECONDS = GEN === 'S' ? 180 : 60

/** The sandbox's helm, run to completion with its own dirs; its stdout. */
export function helmFor(sandbox: () => Sandbox): (...args: string[]) => string {
  return (...args) => execFileSync(sandbox().helm, args, { env: { ...process.env, ...sandbox().helmEnv() } }).toString()
}

/** Starts a sandbox before the file's tests and stops it after them. */
export function useSandbox(opts: StartOptions = {}): { sandbox: () => Sandbox; kube: () => Kube } {
  let sandbox: Sandbox | undefined
  let kube: Kube | undefined
  before(
    async () => {
      sandbox = await startSandbox({ ownerPid: process.pid, ...opts })
      kube = kubeFor(sandbox.kubeconfig)
      current = sandbox
    },
    { timeout: 15 * 60_000 },
  )
  after(async () => {
    current = undefined
    // For debugging a failing file: KRATEO_TEST_AGENT_LOG=1 prints what the engine simulator did.
    if (process.env.KRATEO_TEST_AGENT_LOG && sandbox) console.error(tailFile(sandbox.daemon('agent')?.log ?? '', 3000))
    // KRATEO_TEST_KEEP_LOGS=<dir>: every daemon's and pod's log is kept there, one directory per sandbox.
    const keep = process.env.KRATEO_TEST_KEEP_LOGS
    if (keep && sandbox)
      cpSync(join(sandbox.dir, 'logs'), join(keep, `${basename(sandbox.dir)}-gen-${sandbox.generation}`), {
        recursive: true,
      })
    await sandbox?.stop()
  })
  return {
    sandbox: () => sandbox ?? assertNever('sandbox not started'),
    kube: () => kube ?? assertNever('sandbox not started'),
  }
}

function assertNever(message: string): never {
  throw new Error(message)
}

export { sleep } from '../../sandbox/lib/processes.js'
import { isOurs, tailFile } from '../../sandbox/lib/processes.js'
import { sleep } from '../../sandbox/lib/processes.js'

/** The sandbox of the running file: a wait fails at once, with the reason, when its engine has died. */
let current: Sandbox | undefined

function assertEngineAlive(): void {
  const agent = current?.daemon('agent')
  if (agent && !isOurs(agent.pid, current!.dir))
    throw new Error(`the sandbox's engine simulator (agent) exited; its log ends:\n${tailFile(agent.log, 25)}`)
}

/** Polls check until it returns a truthy value; fails with the last observation after timeoutMs. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined | false | null>,
  timeoutMs = 30_000,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    assertEngineAlive()
    try {
      const value = await check()
      if (value) return value
      last = value
    } catch (err) {
      last = err
    }
    await sleep(everyMs)
  }
  // What the engine simulator did last goes with the failure: a wait that times out in CI is diagnosed from it.
  const agent = current?.daemon('agent')
  throw new Error(
    `timed out after ${timeoutMs / 1000}s waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}` +
      (agent ? `\nthe sandbox agent's log ends:\n${tailFile(agent.log, 40)}` : ''),
  )
}

/** The HTTP status of a failed client-node call (undefined when it was no API error). */
export function httpCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown })?.code
  return typeof code === 'number' ? code : undefined
}

/**
 * A write to a kind created moments ago: on Kubernetes 1.36 it answers 503 for a few seconds (the admission
 * policy plugin's REST mapping catches up), as in a real cluster; a client retries.
 */
export async function whenServed<T>(what: string, write: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  let out: T | undefined
  await eventually(
    what,
    () =>
      write().then(
        (v) => {
          out = v
          return true
        },
        (e) => {
          if (httpCode(e) === 503) return false
          throw e
        },
      ),
    timeoutMs,
    250,
  )
  return out as T
}
