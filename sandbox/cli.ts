// sandbox up | down | env | mint-user | mint-sa: the command-line face of the sandbox for people and
// scripts (tests use the TypeScript API in lib/sandbox.ts directly).
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { get as httpGet } from 'node:http'
import { get as httpsGet } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import {
  type EngineKind,
  type Sandbox,
  isEngineKind,
  loadSandbox,
  sandboxIsRunning,
  startSandbox,
} from './lib/sandbox.js'
import { type GenerationName, generationProfile, isGenerationName } from './engine/generation.js'

const usage = `usage: sandbox <command> [--name NAME]
  up          build (first time) and start a sandbox; prints its kubeconfig and registry
              --generation S|N   engine generation the simulator behaves as (default S; contract section 0)
              --engine sim|real  the engine simulator (default), or the real Gen S engine as processes
                                 (core-provider 0.26.1, cdc 0.20.2, chart-inspector 0.2.0; one per machine)
              --no-agent   leave the agent (LoadBalancer controller, engine simulator) off
  down        stop exactly the processes that sandbox started and remove its state
  facts       what the cluster looks like: version, nodes, namespaces, registry contents, daemons
  engine      print the engine settings and fault knobs; --set JSON merges into them (read live by the simulator)
  logs        --pod NAME   the log of a real-engine pod (a process; kwok's pods have none)
  env         print shell exports (KUBECONFIG, SANDBOX_REGISTRY, HELM_BIN, helm's dirs) for the sandbox
  mint-user   --user U [--group G]   write a kubeconfig for a certificate user with no rights but RBAC's
  mint-sa     --namespace NS --service-account SA   write a kubeconfig holding that ServiceAccount's token
Sandboxes are named (default "default") and live in ${join(tmpdir(), 'krateo-sandbox-<name>')}; several can run side by side.`

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    name: { type: 'string', default: 'default' },
    'no-agent': { type: 'boolean', default: false },
    generation: { type: 'string', default: 'S' },
    engine: { type: 'string' },
    pod: { type: 'string' },
    user: { type: 'string' },
    group: { type: 'string', multiple: true },
    namespace: { type: 'string' },
    'service-account': { type: 'string' },
    set: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
})

const dirFor = (name: string) => join(tmpdir(), `krateo-sandbox-${name}`)
const fail = (message: string): never => {
  console.error(`sandbox: ${message}`)
  process.exit(1)
}

async function main(): Promise<void> {
  const command = positionals[0]
  const dir = dirFor(values.name!)
  if (values.help || !command) {
    console.log(usage)
    return
  }
  const running = () =>
    sandboxIsRunning(dir)
      ? loadSandbox(dir)
      : fail(`no sandbox "${values.name}" is running; start one with: npm run sandbox:up`)
  switch (command) {
    case 'up': {
      if (!isGenerationName(values.generation!)) fail(`--generation must be S or N, not "${values.generation}"`)
      if (values.engine !== undefined && !isEngineKind(values.engine))
        fail(`--engine must be sim or real, not "${values.engine}"`)
      const started = Date.now()
      const sandbox = await startSandbox({
        name: values.name,
        dir,
        agent: !values['no-agent'],
        generation: values.generation!.toUpperCase() as GenerationName,
        engineKind: values.engine as EngineKind | undefined,
        log: (m) => console.error(`${new Date().toISOString().slice(11, 19)} ${m}`),
      })
      console.log(`sandbox "${values.name}" up in ${((Date.now() - started) / 1000).toFixed(1)}s`)
      console.log(`  engine:     ${describeEngine(sandbox)}`)
      console.log(`  kubeconfig: ${sandbox.kubeconfig}`)
      console.log(`  api server: ${sandbox.apiServerUrl}`)
      console.log(
        `  registry:   oci://${sandbox.registry} (${sandbox.state.registryTls ? `TLS: helm --ca-file ${sandbox.caFile}` : 'plain HTTP'})`,
      )
      console.log(`  helm:       ${sandbox.helm}${sandbox.state.helm4 ? ` (helm 4: ${sandbox.state.helm4})` : ''}`)
      console.log(
        `  shell:      eval "$(npm run -s sandbox -- env${values.name === 'default' ? '' : ` --name ${values.name}`})"`,
      )
      return
    }
    case 'down': {
      if (!existsSync(dir)) return console.log(`sandbox "${values.name}" is not running`)
      await loadSandbox(dir).stop()
      console.log(`sandbox "${values.name}" stopped`)
      return
    }
    case 'env': {
      const sandbox = running()
      const env = { ...sandbox.helmEnv(), SANDBOX_REGISTRY: sandbox.registry, HELM_BIN: sandbox.helm }
      for (const [k, v] of Object.entries(env)) console.log(`export ${k}=${JSON.stringify(v)}`)
      return
    }
    case 'facts': {
      const sandbox = running()
      const get = async <T>(path: string) => JSON.parse((await sandbox.apiGet(path)).body) as T
      const version = await get<{ gitVersion: string }>('/version')
      const nodes = await get<{
        items: {
          metadata: { name: string }
          status?: { conditions?: { type: string; status: string }[]; nodeInfo?: { kubeletVersion?: string } }
        }[]
      }>('/api/v1/nodes')
      const namespaces = await get<{ items: { metadata: { name: string } }[] }>('/api/v1/namespaces')
      const catalog = JSON.parse(await registryGet(sandbox, '/v2/_catalog')) as { repositories?: string[] }
      console.log(`kubernetes ${version.gitVersion} at ${sandbox.apiServerUrl}`)
      console.log(`  engine: ${describeEngine(sandbox)}`)
      for (const n of nodes.items) {
        const ready = n.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True'
        console.log(
          `  node ${n.metadata.name}: ${ready ? 'Ready' : 'NotReady'} (${n.status?.nodeInfo?.kubeletVersion ?? '?'})`,
        )
      }
      console.log(`  namespaces: ${namespaces.items.map((n) => n.metadata.name).join(', ')}`)
      console.log(
        `  registry ${sandbox.registry}: ${catalog.repositories?.length ? catalog.repositories.join(', ') : 'no charts yet'}`,
      )
      console.log(`  daemons: ${sandbox.state.daemons.map((d) => `${d.name}(${d.pid})`).join(', ')}`)
      return
    }
    case 'engine': {
      const sandbox = running()
      if (values.set) {
        let knobs: object
        try {
          knobs = JSON.parse(values.set) as object
        } catch {
          return fail('--set takes a JSON object, e.g. \'{"resyncSeconds": 10}\'')
        }
        await sandbox.setEngineSettings(knobs)
      }
      console.log(JSON.stringify(await sandbox.engineSettings(), null, 2))
      return
    }
    case 'logs': {
      const sandbox = running()
      if (!values.pod)
        fail('logs needs --pod NAME (kubectl get pods -A shows them; process pods run on node process-node-0)')
      const logs = join(sandbox.dir, 'logs', 'pods')
      const file = existsSync(logs)
        ? readdirSync(logs).find((f) => f === `${values.pod}.log` || f.endsWith(`_${values.pod}.log`))
        : undefined
      if (!file)
        fail(`no log for pod "${values.pod}": only the real engine's pods run as processes (sandbox up --engine real)`)
      process.stdout.write(readFileSync(join(logs, file!), 'utf8'))
      return
    }
    case 'mint-user': {
      if (!values.user) fail('mint-user needs --user')
      console.log(running().mintUserKubeconfig(values.user!, values.group ?? []))
      return
    }
    case 'mint-sa': {
      if (!values.namespace || !values['service-account']) fail('mint-sa needs --namespace and --service-account')
      console.log(await running().mintServiceAccountKubeconfig(values.namespace!, values['service-account']!))
      return
    }
    default:
      fail(`unknown command "${command}"\n${usage}`)
  }
}

function describeEngine(sandbox: Sandbox): string {
  if (!sandbox.state.engine) return 'off (--no-agent)'
  if (sandbox.engineKind === 'real')
    return 'real Gen S engine: core-provider 0.26.1, composition-dynamic-controller 0.20.2, chart-inspector 0.2.0 (processes on node process-node-0)'
  return `simulator, ${generationProfile(sandbox.generation).describe}`
}

/** A GET from the sandbox's registry, over TLS from the sandbox CA when it serves TLS. */
function registryGet(sandbox: Sandbox, path: string): Promise<string> {
  const tls = sandbox.state.registryTls
  const get = tls ? httpsGet : httpGet
  return new Promise((resolve, reject) => {
    get(
      `${tls ? 'https' : 'http'}://${sandbox.registry}${path}`,
      tls ? { ca: readFileSync(sandbox.caFile) } : {},
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          body += c
        })
        res.on('end', () => resolve(body))
      },
    ).on('error', reject)
  })
}

main().catch((err: Error) => fail(err.message))
