// Runs the built CLI (bin/run.js) as a user would, capturing its exit code and both streams.
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Sandbox } from '../../sandbox/lib/sandbox.js'
import { SANDBOX_GOGC, tailFile } from '../../sandbox/lib/processes.js'

export const repo = dirname(dirname(dirname(fileURLToPath(import.meta.url))))

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

export function runCli(
  args: string[],
  opts: { env?: Record<string, string>; input?: string; onStdout?: (chunk: string) => void } = {},
): Promise<CliResult> & { kill: (sig?: NodeJS.Signals) => void } {
  const child = spawn(process.execPath, [join(repo, 'bin', 'run.js'), ...args], {
    env: { ...process.env, CI: 'true', NO_COLOR: '1', ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (b: Buffer) => {
    stdout += b.toString()
    opts.onStdout?.(b.toString())
  })
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString()
  })
  child.stdin.end(opts.input ?? '')
  const done = new Promise<CliResult>((resolve) =>
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr })),
  )
  return Object.assign(done, {
    kill: (sig: NodeJS.Signals = 'SIGKILL') => {
      child.kill(sig)
    },
  })
}

/** Flags that point the CLI at a sandbox and its registry's fixture installer chart. */
export function sandboxFlags(sb: Sandbox, version = '0.2.53', kubeconfig = sb.kubeconfig): string[] {
  return [
    '--kubeconfig',
    kubeconfig,
    '--chart',
    `oci://${sb.registry}/charts/installer`,
    '--version',
    version,
    ...sb.registryFlags,
  ]
}

/** Environment with the sandbox's helm (HELM_BIN) and its caches kept inside the sandbox. */
export function sandboxEnv(sb: Sandbox): Record<string, string> {
  const { KUBECONFIG: _k, ...helm } = sb.helmEnv()
  // The helm the CLI runs collects garbage as the sandbox's own Go processes do.
  return { ...helm, HELM_BIN: sb.helm, GOGC: SANDBOX_GOGC }
}

/** The CLI as a test drives it against one sandbox: run, the kubeconfig flag, and an install that must succeed. */
export function cliFor(sandbox: () => Sandbox): {
  cli: (args: string[], onStdout?: (s: string) => void) => ReturnType<typeof runCli>
  kc: () => string[]
  install: (...extra: string[]) => Promise<CliResult>
  freshPlatform: () => Promise<void>
} {
  const cli = (args: string[], onStdout?: (s: string) => void) => runCli(args, { env: sandboxEnv(sandbox()), onStdout })
  return {
    cli,
    kc: () => ['--kubeconfig', sandbox().kubeconfig],
    install,
    freshPlatform: async () => {
      const sb = sandbox()
      // The real engine's pods are processes a restore would not bring back: there, every platform is installed.
      if (sb.engineKind === 'real') return void (await install())
      if (sb.hasClusterImage(FRESH_PLATFORM)) await sb.restoreCluster(FRESH_PLATFORM)
      else {
        await install()
        await sb.saveCluster(FRESH_PLATFORM)
      }
      // Whichever way it came, the platform a test starts from is Ready by the CLI's own reading.
      const ready = await cli(['status', '--kubeconfig', sb.kubeconfig, '--wait', '--timeout', '2m', '-o', 'json'])
      if (ready.code !== 0) throw new Error(`status --wait exited ${ready.code}: ${ready.stdout}${ready.stderr}`)
    },
  }
  async function install(...extra: string[]): Promise<CliResult> {
    const res = await cli([
      'install',
      ...sandboxFlags(sandbox()),
      '--exposure',
      'LoadBalancer',
      '--timeout',
      '5m',
      ...extra,
    ])
    if (res.code !== 0)
      throw new Error(`install exited ${res.code}: ${res.stdout}${res.stderr}${clusterFacts(sandbox())}`)
    return res
  }
}

/**
 * The cluster image of a platform just installed by cliFor's install() (`install --exposure LoadBalancer`). The
 * first freshPlatform() installs and keeps the cluster as it then is; the next ones, in this file or in another
 * file's sandbox of the same test run, restore it: a test that needs a Ready platform to act on does not pay for an
 * install (about 30 s of CPU) each time. The restore restarts the control plane and the engine (its start-up round
 * done before the test goes on), and whatever the file's earlier tests left is gone, as on a fresh cluster.
 */
const FRESH_PLATFORM = 'fresh-platform'

/** What a failed install needs to be understood from CI's output alone: the controllers' and the engine's last words. */
function clusterFacts(sb: Sandbox): string {
  // The controllers' routine complaints (a CA bundle they do not use, watches of removed kinds) say nothing.
  const noise = /missing content for CA bundle|Failed to watch/
  return ['kube-controller-manager', 'kube-scheduler', 'agent']
    .map((name) => {
      const lines = tailFile(sb.daemon(name)?.log ?? '', 200)
        .split('\n')
        .filter((l) => !noise.test(l))
      return `\nthe sandbox's ${name} log ends:\n${lines.slice(-12).join('\n')}`
    })
    .join('')
}
