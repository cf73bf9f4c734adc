// The simulated controllers run the real helm binary, as core-provider and the cdc embed helm's library.
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { parse } from 'yaml'
import { SANDBOX_GOGC } from '../lib/processes.js'

export interface ChartInfo {
  /** The pulled chart, unpacked: helm installs from it without pulling again. */
  dir: string
  name: string
  version: string
  schema: Record<string, unknown> | null
  /** The chart reads the live cluster (`lookup`), so an observe must re-render it. */
  readsCluster: boolean
}

/** A CompositionDefinition's registry credentials (spec.chart.credentials, the password read from its Secret). */
export interface RegistryCredentials {
  username: string
  password: string
}

export class HelmRunner {
  private charts = new Map<string, Promise<ChartInfo>>()
  constructor(
    private bin: string,
    private home: string,
    private kubeconfig: string,
    private plainHttpHosts: string[],
  ) {
    mkdirSync(home, { recursive: true })
  }

  env(): Record<string, string> {
    return {
      ...(process.env as Record<string, string>),
      HELM_CONFIG_HOME: join(this.home, 'config'),
      HELM_CACHE_HOME: join(this.home, 'cache'),
      HELM_DATA_HOME: join(this.home, 'data'),
      HELM_REGISTRY_CONFIG: join(this.home, 'registry.json'),
      KUBECONFIG: this.kubeconfig,
      GOGC: SANDBOX_GOGC,
    }
  }

  /** Runs helm; an abort kills it with SIGKILL, as a pod's processes die when the pod is stopped. */
  run(
    args: string[],
    timeoutMs = 120_000,
    signal?: AbortSignal,
    env: Record<string, string> = {},
    input?: string,
  ): Promise<{ stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = execFile(
        this.bin,
        args,
        {
          env: { ...this.env(), ...env },
          timeout: timeoutMs,
          maxBuffer: 64 * 1024 * 1024,
          signal,
          killSignal: 'SIGKILL',
        },
        (err, stdout, stderr) => {
          if (err) {
            const lines = String(stderr).trim().split('\n').filter(Boolean)
            reject(new Error(lines[lines.length - 1] ?? err.message))
          } else resolve({ stdout: String(stdout), stderr: String(stderr) })
        },
      )
      // helm may exit before it reads its input (a refused flag, a dead cluster): its exit says why, not the pipe.
      child.stdin?.on('error', () => undefined)
      child.stdin?.end(input ?? '')
    })
  }

  registryFlags(url: string): string[] {
    return this.plainHttpHosts.some((h) => url.includes(h)) ? ['--plain-http'] : []
  }

  /**
   * Pulls a chart once per set of credentials and reads what core-provider needs from it. A private
   * registry answers only with the CD's credentials; a pull without them is refused, whatever was pulled before.
   */
  chart(url: string, version: string, credentials?: RegistryCredentials): Promise<ChartInfo> {
    const key = `${url}@${version}@${credentials ? `${credentials.username}:${createHash('sha256').update(credentials.password).digest('hex')}` : ''}`
    let info = this.charts.get(key)
    if (!info) {
      info = this.pull(url, version, credentials)
      info.catch(() => this.charts.delete(key))
      this.charts.set(key, info)
    }
    return info
  }

  /** The chart a cdc installs: core-provider hands its cdc the CD's credentials, so what it pulled serves. */
  chartForCdc(url: string, version: string): Promise<ChartInfo> {
    for (const [key, info] of this.charts) if (key.startsWith(`${url}@${version}@`)) return info
    return this.chart(url, version)
  }

  /**
   * Pulls a chart and keeps it unpacked: a Gen S cdc runs helm upgrade on every observe, and pulling the chart
   * again each time would make the simulator, not the engine's rules, the slow part of a test.
   */
  private async pull(url: string, version: string, credentials?: RegistryCredentials): Promise<ChartInfo> {
    const dir = mkdtempSync(join(this.home, 'pull-'))
    try {
      // Credentials go through a login of its own (password on stdin, a registry config of this pull only).
      const env: Record<string, string> = credentials ? { HELM_REGISTRY_CONFIG: join(dir, '.registry.json') } : {}
      if (credentials) {
        const host = url.replace(/^oci:\/\//, '').split('/')[0]!
        await this.run(
          [
            'registry',
            'login',
            host,
            '--username',
            credentials.username,
            '--password-stdin',
            ...this.registryFlags(url),
          ],
          60_000,
          undefined,
          env,
          credentials.password,
        )
      }
      await this.run(
        ['pull', url, '--version', version, '--untar', '-d', dir, ...this.registryFlags(url)],
        120_000,
        undefined,
        env,
      )
      rmSync(join(dir, '.registry.json'), { force: true })
      const [chartDir] = readdirSync(dir)
      const root = join(dir, chartDir!)
      const meta = parse(readFileSync(join(root, 'Chart.yaml'), 'utf8')) as { name: string; version: string }
      const schemaPath = join(root, 'values.schema.json')
      const schema = existsSync(schemaPath)
        ? (JSON.parse(readFileSync(schemaPath, 'utf8')) as Record<string, unknown>)
        : null
      const templates = join(root, 'templates')
      const readsCluster =
        existsSync(templates) &&
        readdirSync(templates).some((f) => readFileSync(join(templates, f), 'utf8').includes('lookup'))
      return { dir: root, name: meta.name, version: meta.version, schema, readsCluster }
    } catch (err) {
      rmSync(dir, { recursive: true, force: true })
      throw err
    }
  }

  /** Runs helm with the values in a file of this run only. */
  private async withValues<T>(values: unknown, fn: (file: string) => Promise<T>): Promise<T> {
    const dir = mkdtempSync(join(this.home, 'values-'))
    const file = join(dir, 'values.json')
    writeFileSync(file, JSON.stringify(values ?? {}))
    try {
      return await fn(file)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }

  /** `asUser` (a ServiceAccount's user name) runs helm with that account's rights, as a cdc's in-cluster client. */
  async upgradeInstall(
    release: string,
    namespace: string,
    url: string,
    version: string,
    values: unknown,
    signal?: AbortSignal,
    asUser?: string,
  ): Promise<void> {
    const chart = await this.chartForCdc(url, version)
    await this.withValues(values, (file) =>
      this.run(
        [
          'upgrade',
          '--install',
          release,
          chart.dir,
          '-n',
          namespace,
          '-f',
          file,
          '--history-max',
          '3',
          // As the real cdc 0.20.2 (internal/helmclient: DisableOpenAPIValidation = true on install and upgrade).
          '--disable-openapi-validation',
          ...(asUser ? ['--kube-as-user', asUser] : []),
        ],
        120_000,
        signal,
      ),
    )
  }

  /** What the chart renders with these values, without the cluster (chart-inspector's question). */
  async template(release: string, namespace: string, url: string, version: string, values: unknown): Promise<string> {
    const chart = await this.chartForCdc(url, version)
    return this.withValues(
      values,
      async (file) => (await this.run(['template', release, chart.dir, '-n', namespace, '-f', file])).stdout,
    )
  }

  /**
   * Settles a release left pending-*: a pending install has nothing to go back to and is removed (the next
   * observe installs it again); a pending upgrade or rollback goes back to the last deployed revision.
   */
  async rollbackPending(release: string, namespace: string, status: string): Promise<void> {
    if (status === 'pending-install') await this.run(['uninstall', release, '-n', namespace, '--no-hooks'])
    else await this.run(['rollback', release, '-n', namespace])
  }

  async uninstall(release: string, namespace: string, asUser?: string): Promise<void> {
    try {
      await this.run(['uninstall', release, '-n', namespace, ...(asUser ? ['--kube-as-user', asUser] : [])])
    } catch (err) {
      if (!/not found/i.test((err as Error).message)) throw err
    }
  }
}
