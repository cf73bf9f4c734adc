// Driving the helm binary: finding it, checking its version (3.16+ or 4.x), and running it so that a
// Ctrl-C in the terminal never kills it half-way (it runs in its own process group; we wait for it).
import { chmodSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { execa, type ResultPromise } from 'execa'
import { ExitCode, UserError, redact } from '../platform/errors.js'

export interface HelmOptions {
  /** --helm flag or HELM_BIN; default `helm` on PATH. */
  bin?: string
  kubeconfig?: string
  context?: string
  /** Registry options passed through to chart pulls. */
  plainHttp?: boolean
  insecureSkipTlsVerify?: boolean
  caFile?: string
  verbose?: (line: string) => void
}

export interface HelmVersion {
  major: number
  minor: number
  patch: number
  text: string
}

export function parseHelmVersion(text: string): HelmVersion | null {
  const m = /v?(\d+)\.(\d+)\.(\d+)/.exec(text)
  if (!m) return null
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), text: `v${m[1]}.${m[2]}.${m[3]}` }
}

export function helmSupported(v: HelmVersion): boolean {
  return (v.major === 3 && v.minor >= 16) || v.major === 4
}

/** The bound of a helm run that has no --timeout of its own (a chart pull, a list, an uninstall). */
export const HELM_TIMEOUT_MS = 15 * 60_000

let running: ResultPromise | null = null
/** The helm run in flight, if any: Ctrl-C handling waits for it instead of killing it. */
export function helmInFlight(): ResultPromise | null {
  return running
}

export class Helm {
  readonly bin: string
  version: HelmVersion | null = null
  /** A registry config of this run only (see useOwnRegistryConfig); removed when the process exits. */
  private registryConfig: string | undefined

  constructor(private opts: HelmOptions) {
    this.bin = opts.bin ?? process.env.HELM_BIN ?? 'helm'
  }

  /** The cluster this helm talks to, as its flags name it (for helmRunsOf). */
  get target(): KubeTarget {
    return { kubeconfig: this.opts.kubeconfig, context: this.opts.context }
  }

  private globalArgs(): string[] {
    return [
      ...(this.opts.kubeconfig ? ['--kubeconfig', this.opts.kubeconfig] : []),
      ...(this.opts.context ? ['--kube-context', this.opts.context] : []),
    ]
  }

  registryArgs(): string[] {
    return [
      ...(this.opts.plainHttp ? ['--plain-http'] : []),
      ...(this.opts.insecureSkipTlsVerify ? ['--insecure-skip-tls-verify'] : []),
      ...(this.opts.caFile ? ['--ca-file', this.opts.caFile] : []),
    ]
  }

  async checkVersion(): Promise<HelmVersion> {
    let out: string
    try {
      out = (await execa(this.bin, ['version', '--short'], { timeout: 20_000 })).stdout
    } catch (err) {
      const code = (err as { code?: string }).code
      if (code === 'ENOENT')
        throw new UserError(
          `helm not found (looked for "${this.bin}")`,
          ExitCode.Helm,
          'install helm 3.16+ or 4.x, or pass its path with --helm',
        )
      throw new UserError(
        `"${this.bin} version" failed: ${(err as Error).message.split('\n')[0]}`,
        ExitCode.Helm,
        'check the helm binary or pass another with --helm',
      )
    }
    const v = parseHelmVersion(out)
    if (!v)
      throw new UserError(`cannot read helm's version from "${out.trim()}"`, ExitCode.Helm, 'use helm 3.16+ or 4.x')
    if (!helmSupported(v))
      throw new UserError(
        `helm ${v.text} is not supported`,
        ExitCode.Helm,
        'use helm 3.16+ or 4.x (--helm selects the binary)',
      )
    this.version = v
    return v
  }

  /** For `helm list` of releases in every status: helm 3 needs --all; helm 4 lists them all and has no such flag. */
  allStatuses(): string[] {
    return this.version && this.version.major >= 4 ? [] : ['--all']
  }

  /**
   * Keeps a registry login inside this run: helm gets a registry config in a private directory (0700),
   * removed when the process exits, so the password does not outlive the command in the user's helm config.
   */
  useOwnRegistryConfig(): void {
    if (this.registryConfig) return
    const dir = mkdtempSync(join(tmpdir(), 'krateo-installer-'))
    chmodSync(dir, 0o700)
    this.registryConfig = join(dir, 'registry.json')
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
  }

  /** Flags of `helm registry login`: it takes --insecure, not --insecure-skip-tls-verify; --plain-http since helm 3.18. */
  loginArgs(): string[] {
    const v = this.version
    const plainHttpLogin = !!v && (v.major > 3 || v.minor >= 18)
    return [
      ...(this.opts.plainHttp && plainHttpLogin ? ['--plain-http'] : []),
      ...(this.opts.insecureSkipTlsVerify ? ['--insecure'] : []),
      ...(this.opts.caFile ? ['--ca-file', this.opts.caFile] : []),
    ]
  }

  /** Runs helm with args; stdin (for passwords) never goes through argv. */
  async run(args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
    const full = [...args, ...this.globalArgs()]
    this.opts.verbose?.(`helm ${redact(full.join(' '))}`)
    const env = this.registryConfig ? { HELM_REGISTRY_CONFIG: this.registryConfig } : undefined
    // Every helm run is bounded: its own --timeout where it has one (install, upgrade), else HELM_TIMEOUT_MS.
    const child = execa(this.bin, full, {
      input: opts.input,
      timeout: opts.timeoutMs ?? HELM_TIMEOUT_MS,
      detached: true,
      reject: false,
      all: false,
      env,
    })
    running = child
    try {
      const result = await child
      if (result.timedOut)
        throw new HelmError(
          `helm ${full[0]} did not finish within ${Math.round((opts.timeoutMs ?? HELM_TIMEOUT_MS) / 60_000)} min`,
          full[0] ?? '',
        )
      if (result.exitCode !== 0 || result.failed) {
        const stderr = String(result.stderr ?? '')
          .trim()
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l && !/^(WARNING|walk\.go|Pulled:|Digest:)/.test(l))
        throw new HelmError(stderr.join(' ') || result.shortMessage || 'helm failed', full[0] ?? '')
      }
      return String(result.stdout ?? '')
    } finally {
      running = null
    }
  }
}

export class HelmError extends Error {
  constructor(
    message: string,
    readonly command: string,
  ) {
    super(message.replace(/^Error: /, ''))
  }
}

/** helm list --filter for exactly this release name (the filter is a regular expression). */
export function exactReleaseFilter(name: string): string {
  return `^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`
}

/** The kubeconfig file and context a helm run names with its flags (undefined: its defaults). */
export interface KubeTarget {
  kubeconfig?: string
  context?: string
}

/** The value of a flag given as `--flag value` or `--flag=value`. */
function flagValue(argv: string[], flag: string): string | undefined {
  const i = argv.indexOf(flag)
  if (i >= 0) return argv[i + 1]
  return argv.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1)
}

/**
 * The helm processes on this machine (this PID namespace) working on a release: a run killed with SIGKILL leaves
 * its helm child running (helm runs detached), still writing the release. Empty where /proc cannot be read.
 * A helm that names another kubeconfig file or context than `target` works on another cluster's release of the
 * same name and is left out; one whose target cannot be told apart is counted (waiting is the safe side).
 */
export function helmRunsOf(release: string, namespace: string, target: KubeTarget = {}): number[] {
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return []
  }
  const pids: number[] = []
  for (const entry of entries) {
    const pid = Number(entry)
    if (!Number.isInteger(pid) || pid === process.pid) continue
    let argv: string[]
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
    } catch {
      continue
    }
    const isHelm = /(^|\/)helm[^/]*$/.test(argv[0] ?? '')
    const inNamespace = argv.some(
      (a, i) => ((a === '-n' || a === '--namespace') && argv[i + 1] === namespace) || a === `--namespace=${namespace}`,
    )
    const theirConfig = flagValue(argv, '--kubeconfig')
    const theirContext = flagValue(argv, '--kube-context')
    let cwd = '/'
    try {
      cwd = readlinkSync(`/proc/${pid}/cwd`)
    } catch {
      /* gone meanwhile, or not ours to read: its relative path is judged from / */
    }
    const elsewhere =
      (theirConfig !== undefined &&
        target.kubeconfig !== undefined &&
        resolve(cwd, theirConfig) !== resolve(target.kubeconfig)) ||
      (theirContext !== undefined && target.context !== undefined && theirContext !== target.context)
    if (
      isHelm &&
      inNamespace &&
      !elsewhere &&
      argv.includes(release) &&
      argv.some((a) => ['upgrade', 'install', 'rollback', 'uninstall'].includes(a))
    )
      pids.push(pid)
  }
  return pids
}

export interface ReleaseStatus {
  status: string
  chart: string
  version: string
  revision: number
}

/** One release as helm lists it (any status); null when there is none of that name. */
export async function releaseStatus(helm: Helm, namespace: string, release: string): Promise<ReleaseStatus | null> {
  let out: string
  try {
    out = await helm.run([
      'list',
      '-n',
      namespace,
      '--filter',
      exactReleaseFilter(release),
      ...helm.allStatuses(),
      '-o',
      'json',
    ])
  } catch (err) {
    throw new UserError(
      `helm cannot list the releases of ${namespace}: ${(err as Error).message}`,
      ExitCode.Helm,
      'check that helm reaches the cluster with the same kubeconfig and context',
    )
  }
  const rel = (JSON.parse(out || '[]') as { status: string; chart: string; revision: string }[])[0]
  if (!rel) return null
  const version = rel.chart.replace(/^.*-(\d+\.\d+\.\d+.*)$/, '$1')
  return {
    status: rel.status,
    chart: rel.chart.slice(0, rel.chart.length - version.length - 1),
    version,
    revision: Number(rel.revision),
  }
}

/** Resolves once ready(observed) holds; reports why not meanwhile; fails at the deadline. */
