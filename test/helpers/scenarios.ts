// Scenarios a user meets, written once and run against each engine: the simulator of either generation and the
// real Gen S engine (real-engine.test.ts). Each ends in the same command run again reaching its goal.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { AdmissionregistrationV1Api } from '@kubernetes/client-node'
import type { Sandbox } from '../../sandbox/lib/sandbox.js'
import { helmRunsOf } from '../../src/cluster/helm.js'
import { eventually, GEN, type Kube } from './sandbox.js'
import { sandboxFlags, type CliResult, type cliFor } from './cli.js'
import { scratchDir } from './scratch.js'

export interface ScenarioContext extends ReturnType<typeof cliFor> {
  sandbox: () => Sandbox
  kube: () => Kube
}

const phase = async (t: ScenarioContext) => {
  const status = await t.cli(['status', ...t.kc(), '-o', 'json'])
  return (JSON.parse(status.stdout) as { phase: string }).phase
}

/**
 * Ctrl-C where a user would press it: runs the command until its output matches `at.line`, sends SIGINT, and
 * expects exit 9 with the line that says how to go on (`resume`). Returns what the interrupted run printed.
 */
export async function interruptedAt(
  t: Pick<ScenarioContext, 'cli'>,
  args: string[],
  at: { what: string; line: RegExp; timeoutMs: number },
  resume: RegExp,
): Promise<CliResult> {
  let seen = ''
  const run = t.cli(args, (s) => {
    seen += s
  })
  try {
    await eventually(at.what, async () => at.line.test(seen), at.timeoutMs, 50)
  } catch (err) {
    run.kill('SIGKILL')
    await run
    throw err
  }
  run.kill('SIGINT')
  const cut = await run
  assert.equal(cut.code, 9, cut.stdout + cut.stderr)
  assert.match(cut.stderr, resume)
  return cut
}

/** Issue "re-running always finishes" (1): install killed with its helm run inside the bootstrap release. */
export async function killedInsideBootstrap(t: ScenarioContext): Promise<void> {
  const { sandbox, kube, cli } = t
  // core-provider's pod starts slowly (a slow image pull), so the bootstrap helm run (--wait) is still in flight
  // when the kill lands.
  await sandbox().setEngineSettings({ readinessDelaySeconds: { krateo: 30 } })
  const releaseStates = async () =>
    (
      await kube().core.listNamespacedSecret({ namespace: 'krateo-system', labelSelector: 'owner=helm,name=krateo' })
    ).items.map((s) => s.metadata!.labels!.status)
  const args = ['install', ...sandboxFlags(sandbox()), '--exposure', 'LoadBalancer', '--timeout', '8m']
  const first = cli(args)
  await eventually(
    'the bootstrap release is being installed',
    async () => (await releaseStates().catch((): (string | undefined)[] => [])).includes('pending-install'),
    120_000,
    100,
  )
  // A CI runner cancelling the job kills the whole process tree: the CLI and the helm it started.
  // This sandbox's only: files run two at a time, and another sandbox may be installing a release named krateo too.
  // helmRunsOf counts a helm whose cluster it cannot tell (no --kubeconfig: another file's `helm install krateo`
  // by $KUBECONFIG) on the safe side; the kill takes only those that name this sandbox's (one such kill of another
  // file's helm made a full run fail).
  const kubeconfig = sandbox().kubeconfig
  const namesOurs = (pid: number) => {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
      return argv.some(
        (a, i) => (a === '--kubeconfig' && argv[i + 1] === kubeconfig) || a === `--kubeconfig=${kubeconfig}`,
      )
    } catch {
      return false
    }
  }
  const helms = helmRunsOf('krateo', 'krateo-system', { kubeconfig }).filter(namesOurs)
  assert.ok(helms.length > 0, 'helm is running the bootstrap release')
  first.kill('SIGKILL')
  for (const pid of helms) process.kill(pid, 'SIGKILL')
  await first
  assert.deepEqual(await releaseStates(), ['pending-install'])
  await sandbox().setEngineSettings({ readinessDelaySeconds: {} })

  const again = await cli(args)
  assert.equal(again.code, 0, `${again.stdout}\n${again.stderr}`)
  assert.match(again.stderr, /took over the krateo-installer lock: install by .* is no longer running/)
  assert.match(
    again.stdout,
    /release krateo was left pending-install by a killed run: removing that first revision \(hooks skipped\) to install it again/,
  )
  assert.equal(await phase(t), 'Ready')
  assert.deepEqual(await releaseStates(), ['deployed'])
}

/**
 * Issue "re-running always finishes" (2): core-provider stopped while Stage 2 waits. The first uninstall names it
 * (exit 7) and never says a controller works that does not run; `--force --yes` finishes, removing the generated
 * CRDs itself. `slowStage2`: the simulator removes the Installer at once unless told to take 15 s; the real engine
 * takes its own time.
 */
export async function coreProviderStoppedInStage2(
  t: ScenarioContext,
  opts: { slowStage2: boolean; timeout: string },
): Promise<void> {
  const { sandbox, kube, cli, kc } = t
  await t.freshPlatform()
  if (opts.slowStage2) await sandbox().setEngineSettings({ slowDeletionSeconds: { installer: 15 } })
  let seen = ''
  const first = cli(['uninstall', ...kc(), '--yes', '--timeout', opts.timeout], (chunk) => {
    seen += chunk
  })
  // With the Installer's removal slowed, once its wait shows (the CLI's own writes to it done); else at Stage 2.
  const waiting = opts.slowStage2 ? /^\S+ {3}installer: Terminating/m : /Stage 2: delete the Installer CR/
  await eventually('Stage 2 under way', async () => waiting.test(seen), 180_000, 100)
  // Found by its label: the real chart names it after the release (krateo-core-provider), the fixture does not.
  const { items } = await kube().apps.listNamespacedDeployment({
    namespace: 'krateo-system',
    labelSelector: 'app.kubernetes.io/name=core-provider',
  })
  assert.equal(items.length, 1, items.map((d) => d.metadata!.name).join(', '))
  await sandbox().scaleDeployment('krateo-system', items[0]!.metadata!.name!, 0)
  const stopped = await first
  if (opts.slowStage2) await sandbox().setEngineSettings({ slowDeletionSeconds: {} })
  assert.equal(stopped.code, 7, stopped.stdout + stopped.stderr)
  assert.match(stopped.stderr, /^Error: .*core-provider.*--force --yes/m)
  // Stopped while the Installer's removal waits (slowed): its cdc's finalizer removal is what the webhook refuses
  // (the real engine got there when core-provider stopped before that cdc removed it, as a run of the real lane did).
  if (opts.slowStage2 && GEN === 'S')
    assert.match(
      stopped.stderr,
      /^Error: cannot let the cdc remove the finalizer of the Installer CR: core-provider is not running, and its webhook \S+ refuses every write to Compositions/m,
    )
  assert.doesNotMatch(
    stopped.stdout,
    /core-provider is removing/,
    'no controller is said to work while it is not running',
  )

  // Someone with edit rights replaces a bundle object of a definition still there: the sweep deletes the objects
  // recorded while the definition existed, each as that object, and keeps this one.
  const replaced = await replaceBundleConfigMap(t)

  const forced = await cli(['uninstall', ...kc(), '--force', '--yes', '--timeout', '3m'])
  assert.equal(forced.code, 0, forced.stdout + forced.stderr)
  assert.doesNotMatch(forced.stdout, /core-provider is removing/)
  assert.match(forced.stdout, /Forced \(check what may be left behind\):/)
  assert.match(forced.stdout, new RegExp(`ConfigMap/${replaced}: made again since it was recorded.*: kept`))
  const kept = await kube().core.readNamespacedConfigMap({ name: replaced, namespace: 'krateo-system' })
  assert.equal(kept.data?.owner, 'team-a', 'the replacement is not deleted')
  await kube().core.deleteNamespacedConfigMap({ name: replaced, namespace: 'krateo-system' })
  const generated = (await kube().crds.listCustomResourceDefinition()).items
    .map((c) => c.metadata!.name!)
    .filter((n) => n.endsWith('.composition.krateo.io'))
  assert.deepEqual(generated, [], 'no generated CRD')
  assert.equal(await phase(t), 'NotInstalled')
}

/** Deletes the first bundle ConfigMap of a definition still in the namespace and makes another of that name. */
async function replaceBundleConfigMap(t: ScenarioContext): Promise<string> {
  const { items } = (await t.kube().custom.listNamespacedCustomObject({
    group: 'core.krateo.io',
    version: 'v1alpha1',
    namespace: 'krateo-system',
    plural: 'compositiondefinitions',
  })) as { items: { status?: { resource?: string; apiVersion?: string } }[] }
  const core = t.kube().core
  for (const cd of items) {
    const version = cd.status?.apiVersion?.split('/')[1]
    if (!cd.status?.resource || !version) continue
    const name = `${cd.status.resource}-${version}-configmap`
    const gone = await core.deleteNamespacedConfigMap({ name, namespace: 'krateo-system' }).then(
      () => true,
      () => false,
    )
    if (!gone) continue
    await core.createNamespacedConfigMap({
      namespace: 'krateo-system',
      body: { metadata: { name }, data: { owner: 'team-a' } },
    })
    return name
  }
  throw new Error('no definition with a cdc bundle is left to replace an object of')
}

/** Every helm release in the sandbox, pending ones included. */
export function helmReleases(t: Pick<ScenarioContext, 'sandbox'>): { name: string }[] {
  const sb = t.sandbox()
  return JSON.parse(
    execFileSync(sb.helm, ['list', '-A', '-a', '-o', 'json'], { env: { ...process.env, ...sb.helmEnv() } }).toString(),
  ) as { name: string }[]
}

/** Mutating webhooks and admission policies, less the sandbox's own pod webhook (its kubelet stand-in). */
export async function versionStamps(t: Pick<ScenarioContext, 'sandbox' | 'kube'>): Promise<string[]> {
  const hooks = await t.kube().kc.makeApiClient(AdmissionregistrationV1Api).listMutatingWebhookConfiguration()
  const policies = JSON.parse(
    (await t.sandbox().apiGet('/apis/admissionregistration.k8s.io/v1/mutatingadmissionpolicies')).body,
  ) as { items?: { metadata: { name: string } }[] }
  return [
    ...hooks.items.map((h) => h.metadata!.name!).filter((n) => n !== 'krateo-sandbox-kubelet'),
    ...(policies.items ?? []).map((p) => p.metadata.name),
  ]
}

/**
 * Issue "re-running always finishes" (3): an uninstall killed (kill -9) after its helm uninstall of the bootstrap
 * release, before the sweep. The next run takes over the lock of the process that is gone and completes the sweep.
 * `stamps`: what stamps the version label on this engine, which outlives the release until the sweep; `release`:
 * the bootstrap release's name (an adopted platform keeps its own).
 */
export async function killedAfterHelmUninstall(
  t: ScenarioContext,
  stamps: string[],
  release = 'krateo',
): Promise<string> {
  const { sandbox, cli, kc } = t
  // Stop the CLI the moment its helm uninstall starts; helm goes on (its own process group) and finishes. A helm
  // that says so when it starts, not a poll for its process: under load the poll missed a short helm run (CI).
  const work = scratchDir('helm-marker-')
  const started = join(work, 'uninstall-started')
  const wrapper = join(work, 'helm')
  writeFileSync(
    wrapper,
    `#!/bin/sh\ncase " $* " in *" uninstall "*) : > '${started}' ;; esac\nexec '${sandbox().helm}' "$@"\n`,
    { mode: 0o755 },
  )
  const first = cli(['uninstall', ...kc(), '--yes', '--timeout', '10m', '--helm', wrapper])
  await eventually('helm uninstall running', async () => existsSync(started), 600_000, 10)
  first.kill('SIGSTOP')
  await eventually(
    'helm uninstalled the bootstrap release',
    async () => !helmReleases(t).some((r) => r.name === release),
    120_000,
  )
  first.kill('SIGKILL')
  await first
  assert.deepEqual(await versionStamps(t), stamps, 'the sweep did not run: the version stamp is still there')
  const res = await cli(['uninstall', ...kc(), '--yes', '--timeout', '10m'])
  assert.equal(res.code, 0, res.stdout + res.stderr)
  assert.match(
    res.stderr,
    /took over the krateo-installer lock: uninstall by .* pid \d+ pidns \d+ is no longer running/,
    'no wait for the lease of a process that is gone',
  )
  assert.match(res.stdout, new RegExp(`${release} is not installed`))
  assert.match(res.stdout, /Stage 3: sweep .* — [1-9]\d* removed/)
  assert.deepEqual(await versionStamps(t), [], 'no webhook, no admission policy')
  return res.stdout
}
