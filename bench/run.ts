// npm run bench: API requests and wall time of `status` (seed DAG and a generated 200-component DAG) and
// API requests per minute while `install` follows the seed DAG, each against a naive list-everything
// approach measured in the same run, and install speed per engine generation (speed.ts). Requests are counted by kube-apiserver itself (its audit log, one
// user per contender), since its request metrics cannot tell clients apart.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { KubeConfig, CoreV1Api, CustomObjectsApi, ApiextensionsV1Api } from '@kubernetes/client-node'
import { auditedRequests, firstAuditedAt, startSandbox, type Sandbox } from '../sandbox/lib/sandbox.js'
import { sandboxDir } from '../sandbox/lib/paths.js'
import { COMPONENTS_0_2_53, type ComponentPin } from '../sandbox/fixtures/components.js'
import { loadCluster } from '../src/cluster/cluster.js'
import { observe } from '../src/cluster/observe.js'
import { platformState } from '../src/platform/state.js'
import { dashed } from '../src/platform/components.js'
import { pluralFromKind } from '../sandbox/engine/naming.js'
import { parse } from 'yaml'
import { speedBench, speedReport } from './speed.js'

const repo = join(sandboxDir, '..')
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

async function must(sb: Sandbox, method: string, path: string, body?: unknown): Promise<void> {
  const res = await sb.apiRequest(
    method,
    path,
    body,
    method === 'PATCH' ? 'application/merge-patch+json' : 'application/json',
  )
  if (res.status >= 400 && res.status !== 409)
    throw new Error(`${method} ${path}: ${res.status} ${res.body.slice(0, 200)}`)
}

const readyStatus = {
  conditions: [
    { type: 'Ready', status: 'True', reason: 'Available', lastTransitionTime: '2026-01-01T00:00:00Z' },
    { type: 'Synced', status: 'True', reason: 'ReconcileSuccess', lastTransitionTime: '2026-01-01T00:00:00Z' },
  ],
}
const crd = (plural: string, kind: string, versions: string[]) => ({
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: `${plural}.composition.krateo.io` },
  spec: {
    group: 'composition.krateo.io',
    scope: 'Namespaced',
    names: {
      kind,
      plural,
      singular: kind.toLowerCase(),
      listKind: `${kind}List`,
      categories: ['compositions', 'comps'],
    },
    versions: versions.map((v, i) => ({
      name: v,
      served: true,
      storage: i === 0,
      subresources: { status: {} },
      schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
    })),
  },
})

/** Writes a Ready platform's objects straight through the API (engine off): what status reads. */
async function synthesize(sb: Sandbox, ns: string, components: ComponentPin[]): Promise<void> {
  await must(sb, 'POST', '/api/v1/namespaces', { metadata: { name: ns } })
  const cdCrd = parse(
    readFileSync(
      join(sandboxDir, 'fixtures/installer/core-provider/crds/core.krateo.io_compositiondefinitions.yaml'),
      'utf8',
    ),
  )
  await must(sb, 'POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', cdCrd)
  await must(
    sb,
    'POST',
    '/apis/apiextensions.k8s.io/v1/customresourcedefinitions',
    crd('installers', 'Installer', ['v0-2-53']),
  )
  for (const c of components)
    await must(
      sb,
      'POST',
      '/apis/apiextensions.k8s.io/v1/customresourcedefinitions',
      crd(pluralFromKind(c.kind), c.kind, [dashed(c.version)]),
    )
  await new Promise((r) => setTimeout(r, 3000))
  const cds = `/apis/core.krateo.io/v1alpha1/namespaces/${ns}/compositiondefinitions`
  const mkCD = async (name: string, version: string, kind: string) => {
    await must(sb, 'POST', cds, {
      apiVersion: 'core.krateo.io/v1alpha1',
      kind: 'CompositionDefinition',
      metadata: { name },
      spec: { chart: { url: `oci://example/${name}`, version } },
    })
    await must(sb, 'PATCH', `${cds}/${name}/status`, {
      status: {
        ...readyStatus,
        apiVersion: `composition.krateo.io/${dashed(version)}`,
        kind,
        resource: pluralFromKind(kind),
      },
    })
  }
  await mkCD('installer', '0.2.53', 'Installer')
  const inst = `/apis/composition.krateo.io/v0-2-53/namespaces/${ns}/installers`
  await must(sb, 'POST', inst, {
    apiVersion: 'composition.krateo.io/v0-2-53',
    kind: 'Installer',
    metadata: { name: 'installer' },
    spec: { components, features: { platform: true, observability: true, oasgen: true, agents: true, gen: true } },
  })
  await must(sb, 'PATCH', `${inst}/installer/status`, { status: readyStatus })
  for (const c of components) {
    await mkCD(c.name, c.version, c.kind)
    const path = `/apis/composition.krateo.io/${dashed(c.version)}/namespaces/${ns}/${pluralFromKind(c.kind)}`
    await must(sb, 'POST', path, {
      apiVersion: `composition.krateo.io/${dashed(c.version)}`,
      kind: c.kind,
      metadata: { name: c.name },
      spec: {},
    })
    await must(sb, 'PATCH', `${path}/${c.name}/status`, { status: readyStatus })
  }
}

function generated(n: number): ComponentPin[] {
  return Array.from({ length: n }, (_, i) => ({
    name: `gen-${i}`,
    kind: `Gen${i}`,
    version: '0.1.0',
    tier: 'gen',
    feature: 'gen',
    deps: i === 0 ? [] : [`gen-${Math.floor((i - 1) / 3)}`],
  }))
}

/** What a straightforward script does: discovery, then per component its CD, its CRD and a list of its kind. */
async function naiveStatus(kc: KubeConfig, ns: string, components: ComponentPin[]): Promise<number> {
  const custom = kc.makeApiClient(CustomObjectsApi)
  const crds = kc.makeApiClient(ApiextensionsV1Api)
  const core = kc.makeApiClient(CoreV1Api)
  await custom.getAPIResources({ group: 'composition.krateo.io', version: 'v0-2-53' }).catch(() => undefined)
  await custom
    .getNamespacedCustomObject({
      group: 'composition.krateo.io',
      version: 'v0-2-53',
      namespace: ns,
      plural: 'installers',
      name: 'installer',
    })
    .catch(() => undefined)
  let ready = 0
  for (const c of components) {
    // A component not there yet is skipped, as a script would, and the next one read.
    try {
      const cd = (await custom.getNamespacedCustomObject({
        group: 'core.krateo.io',
        version: 'v1alpha1',
        namespace: ns,
        plural: 'compositiondefinitions',
        name: c.name,
      })) as { status?: { resource?: string } }
      await crds.readCustomResourceDefinition({ name: `${cd.status?.resource}.composition.krateo.io` })
      const list = (await custom.listNamespacedCustomObject({
        group: 'composition.krateo.io',
        version: dashed(c.version),
        namespace: ns,
        plural: cd.status!.resource!,
      })) as { items: unknown[] }
      ready += list.items.length
    } catch {
      continue
    }
  }
  await core.listNamespacedService({ namespace: ns })
  return ready
}

function userKube(sb: Sandbox, user: string): { path: string; kc: KubeConfig } {
  const path = sb.mintUserKubeconfig(user, ['system:masters'])
  const kc = new KubeConfig()
  kc.loadFromFile(path)
  return { path, kc }
}

async function statusBench(sb: Sandbox, label: string, ns: string, components: ComponentPin[]) {
  const runs = 5
  const ours = userKube(sb, `ours-${label}`)
  const naive = userKube(sb, `naive-${label}`)
  const oursTimes: number[] = []
  const naiveTimes: number[] = []
  for (let i = 0; i < runs; i++) {
    let t = performance.now()
    const state = platformState(await observe(loadCluster({ kubeconfig: ours.path }), ns))
    oursTimes.push(performance.now() - t)
    // The synthesized platform has no Services or workloads, so the portal waits for its wiring: what counts
    // here is that status read every component (all of them known, none missing a read).
    if (state.components.length !== components.length)
      throw new Error(`${label}: status saw ${state.components.length} of ${components.length} components`)
    if (state.problems.length) throw new Error(`${label}: status reports ${state.problems.join('; ')}`)
    t = performance.now()
    await naiveStatus(naive.kc, ns, components)
    naiveTimes.push(performance.now() - t)
  }
  const cliUser = userKube(sb, `cli-${label}`)
  const t = performance.now()
  try {
    execFileSync(
      process.execPath,
      [join(repo, 'bin/run.js'), 'status', '--kubeconfig', cliUser.path, '-n', ns, '-o', 'json'],
      { stdio: 'ignore' },
    )
  } catch {
    /* status exits 10-ish when the platform is not Ready: the time and requests still count */
  }
  const cliWall = performance.now() - t
  await new Promise((r) => setTimeout(r, 1500)) // let the audit log flush
  return {
    label,
    components: components.length,
    oursRequests: auditedRequests(sb, `ours-${label}`) / runs,
    naiveRequests: auditedRequests(sb, `naive-${label}`) / runs,
    oursMs: median(oursTimes),
    naiveMs: median(naiveTimes),
    cliWallMs: cliWall,
    cliRequests: auditedRequests(sb, `cli-${label}`),
  }
}

async function installBench() {
  const sb = await startSandbox({ ownerPid: process.pid, audit: true })
  try {
    const ours = userKube(sb, 'install-cli')
    const naive = userKube(sb, 'install-naive')
    const started = Date.now()
    let done = false
    // The naive follower polls everything every 2 s for as long as the install runs.
    const follower = (async () => {
      while (!done) {
        await naiveStatus(
          naive.kc,
          'krateo-system',
          COMPONENTS_0_2_53.filter((c) => c.feature !== 'agents'),
        ).catch(() => undefined)
        await new Promise((r) => setTimeout(r, 2000))
      }
    })()
    execFileSync(
      process.execPath,
      [
        join(repo, 'bin/run.js'),
        'install',
        '--kubeconfig',
        ours.path,
        '--chart',
        `oci://${sb.registry}/charts/installer`,
        '--plain-http',
        '--exposure',
        'LoadBalancer',
        '--timeout',
        '10m',
      ],
      {
        env: { ...process.env, ...sb.helmEnv(), KUBECONFIG: ours.path, HELM_BIN: sb.helm, CI: 'true' },
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    )
    done = true
    await follower
    const ended = Date.now()
    await new Promise((r) => setTimeout(r, 1500))
    // Compare the following phase only (from the Installer CR's creation): before it, install runs helm
    // and preflight, which a poller does not do.
    const since = firstAuditedAt(sb, 'install-cli', 'create', 'installers') ?? new Date(started).toISOString()
    const minutes = (ended - Date.parse(since)) / 60_000
    // Then the uninstall of the same platform: its waits follow objects by watch, not by polling.
    const un = userKube(sb, 'uninstall-cli')
    const unStarted = Date.now()
    execFileSync(
      process.execPath,
      [join(repo, 'bin/run.js'), 'uninstall', '--kubeconfig', un.path, '--timeout', '10m'],
      {
        env: { ...process.env, ...sb.helmEnv(), KUBECONFIG: un.path, HELM_BIN: sb.helm, CI: 'true' },
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    )
    const unMinutes = (Date.now() - unStarted) / 60_000
    await new Promise((r) => setTimeout(r, 1500))
    const unRequests = auditedRequests(sb, 'uninstall-cli')
    return {
      minutes: (ended - started) / 60_000,
      followMinutes: minutes,
      total: auditedRequests(sb, 'install-cli'),
      oursPerMinute: auditedRequests(sb, 'install-cli', since) / minutes,
      naivePerMinute: auditedRequests(sb, 'install-naive', since) / minutes,
      uninstallMinutes: unMinutes,
      uninstallRequests: unRequests,
    }
  } finally {
    await sb.stop()
  }
}

/** Median wall time of a command over a few runs, in ms. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, runs = 7): number {
  const times: number[] = []
  for (let i = 0; i < runs; i++) {
    const t = performance.now()
    try {
      execFileSync(cmd, args, { env, stdio: 'ignore' })
    } catch {
      /* status exits 10 when not Ready: the time still counts */
    }
    times.push(performance.now() - t)
  }
  return median(times)
}

/** Start-up: --help against helm version, and how much of status is spent loading modules. */
function startupBench(sb: Sandbox) {
  const cliUser = userKube(sb, 'startup')
  const helmMs = timed(sb.helm, ['version', '--short'])
  const helpMs = timed(process.execPath, [join(repo, 'bin/run.js'), '--help'])
  const statusMs = timed(process.execPath, [
    join(repo, 'bin/run.js'),
    'status',
    '--kubeconfig',
    cliUser.path,
    '-o',
    'json',
  ])
  const loadMs = timed(process.execPath, [
    '--input-type=module',
    '-e',
    `await import(${JSON.stringify(join(repo, 'dist/commands/status.js'))})`,
  ])
  const nodeMs = timed(process.execPath, ['-e', '0'])
  // The single executable, as CI images without Node run it: its root help, and a command that loads the CLI.
  const exe = join(
    repo,
    execFileSync('bash', [join(repo, 'scripts/package.sh')], { cwd: repo, encoding: 'utf8' })
      .trim()
      .split('\n')
      .pop()!,
  )
  const exeHelpMs = timed(exe, ['--help'])
  const exeVersionMs = timed(exe, ['version', '--client'])
  return { helmMs, helpMs, statusMs, loadMs, nodeMs, exeHelpMs, exeVersionMs }
}

/** `npm run bench -- --only status,install,speed` runs a part; all by default. */
function parts(): Set<string> {
  const i = process.argv.indexOf('--only')
  // critical: only the nudged installs with slow pods (the critical-path bound), without the long engine-alone runs.
  const all = ['status', 'install', 'speed', 'critical']
  if (i < 0) return new Set(all)
  const chosen = (process.argv[i + 1] ?? '').split(',').filter(Boolean)
  const unknown = chosen.filter((p) => !all.includes(p))
  if (!chosen.length || unknown.length) throw new Error(`--only takes a comma-separated list of ${all.join(', ')}`)
  return new Set(chosen)
}

async function main(): Promise<void> {
  const only = parts()
  const log = (line: string) => console.error(line)
  if (only.has('status')) await statusAndStartup()
  if (only.has('install')) await installReport()
  if (only.has('speed') || only.has('critical')) {
    const alone = only.has('speed')
    log(
      alone
        ? 'measuring install speed per generation (engine alone side by side, then with nudges), then on the real Gen S engine; ~35 min'
        : 'measuring nudged installs with slow pods (~2 min)',
    )
    console.log(`\n${speedReport(await speedBench(log, { alone })).join('\n')}`)
  }
}

async function statusAndStartup(): Promise<void> {
  const sb = await startSandbox({ ownerPid: process.pid, agent: false, charts: false, audit: true })
  let rows
  let startup: ReturnType<typeof startupBench> | undefined
  try {
    await synthesize(sb, 'krateo-system', COMPONENTS_0_2_53)
    await synthesize(sb, 'krateo-big', generated(200))
    rows = [
      await statusBench(sb, 'seed', 'krateo-system', COMPONENTS_0_2_53),
      await statusBench(sb, 'gen200', 'krateo-big', generated(200)),
    ]
    startup = startupBench(sb)
  } finally {
    await sb.stop()
  }
  const f = (n: number) => n.toFixed(1)
  console.log('\nstatus (per call; requests counted by kube-apiserver)')
  console.log('DAG      components  requests ours/naive (ratio)   time ms ours/naive (ratio)   CLI end-to-end')
  for (const r of rows) {
    console.log(
      `${r.label.padEnd(8)} ${String(r.components).padStart(10)}  ${f(r.oursRequests).padStart(6)} / ${f(r.naiveRequests).padEnd(6)} (${f(r.naiveRequests / r.oursRequests)}x fewer)   ${f(r.oursMs).padStart(7)} / ${f(r.naiveMs).padEnd(7)} (${f(r.naiveMs / r.oursMs)}x faster)   ${f(r.cliWallMs)} ms, ${r.cliRequests} requests`,
    )
  }
  if (startup) {
    console.log(
      `\nstart-up (median of 7): krateo-installer --help ${f(startup.helpMs)} ms vs helm version ${f(startup.helmMs)} ms (${f(startup.helpMs / startup.helmMs)}x; Node.js itself starts in ${f(startup.nodeMs)} ms)`,
    )
    console.log(
      `  the single executable: --help ${f(startup.exeHelpMs)} ms (${f(startup.exeHelpMs / startup.helmMs)}x helm version), version --client ${f(startup.exeVersionMs)} ms (${f(startup.exeVersionMs / startup.helmMs)}x; it loads the CLI)`,
    )
    console.log(
      `  status end-to-end ${f(startup.statusMs)} ms, of which loading its modules ${f(startup.loadMs)} ms (${f((100 * startup.loadMs) / startup.statusMs)}%)`,
    )
  }
}

async function installReport(): Promise<void> {
  const install = await installBench()
  const f = (n: number) => n.toFixed(1)
  console.log(
    `\ninstall of the seed DAG: ${f(install.minutes)} min in all (${install.total} requests, helm's included); while following (${f(install.followMinutes)} min):`,
  )
  console.log(
    `  API requests per minute: ours ${f(install.oursPerMinute)} (watches), naive 2 s poller ${f(install.naivePerMinute)} (${f(install.naivePerMinute / install.oursPerMinute)}x more)`,
  )
  console.log(
    `\nuninstall of the same platform: ${f(install.uninstallMinutes)} min, ${install.uninstallRequests} API requests, helm's included (${f(install.uninstallRequests / install.uninstallMinutes)} per minute; its waits follow objects by watch)`,
  )
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
