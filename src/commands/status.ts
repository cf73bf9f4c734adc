import { Flags } from '@oclif/core'
import { KrateoCommand, prose } from '../cli/base-command.js'
import { type Cluster, checkReachable, loadCluster } from '../cluster/cluster.js'
import { readLock } from '../cluster/lock.js'
import { detectGeneration } from '../cluster/engine.js'
import { ExitCode, UserError } from '../platform/errors.js'
import { parseDuration } from '../platform/flags.js'
import { observe } from '../cluster/observe.js'
import { type PlatformState, platformState, phaseText } from '../platform/state.js'
import { renderStatus, stamp, statusDocument, toYaml } from '../ui/output.js'
import type { PlatformWatch as Watcher } from '../operations/follow.js'

export default class Status extends KrateoCommand {
  static override summary = 'Show where the Krateo platform and each of its components stand'
  static override description =
    prose(`Reads everything from the live Installer CR and the cluster, so it works for any installer chart version.
With --wait it waits until the platform is Ready (a spinner on a terminal, a line per change in CI), for CI steps
after an install, like "cilium status --wait".
Exit code: 0 when the platform is Ready, 10 when it is not (any other phase), 6 when --wait timed out, 3 when the
cluster cannot be read.`)
  static override examples = [
    '<%= config.bin %> status',
    '<%= config.bin %> status -o json',
    '<%= config.bin %> status --watch',
    '<%= config.bin %> status --wait --timeout 10m',
  ]

  static override flags = {
    output: Flags.string({
      char: 'o',
      description: 'output format',
      options: ['table', 'json', 'yaml'],
      default: 'table',
    }),
    watch: Flags.boolean({
      char: 'w',
      description: 'keep following the platform from watches until interrupted (prints on every change)',
      default: false,
      exclusive: ['wait'],
    }),
    wait: Flags.boolean({
      description: 'wait until the platform is Ready, then print its status (exit 6 at --timeout)',
      default: false,
    }),
    timeout: Flags.string({
      description: 'with --wait: how long to wait, e.g. 5m, 1h30m',
      default: '10m',
      dependsOn: ['wait'],
    }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Status)
    this.verbose = flags.verbose
    const format = flags.json ? 'json' : flags.output
    const waitMs = flags.wait ? parseDuration(flags.timeout) : 0
    const cluster = loadCluster(flags)
    await checkReachable(cluster)
    const print = (state: ReturnType<typeof platformState>) => {
      if (format === 'json') this.printJson(statusDocument(state))
      else if (format === 'yaml') process.stdout.write(toYaml(statusDocument(state)))
      else this.log(renderStatus(state))
    }
    const withLock = (st: PlatformState) => withRunAndGeneration(cluster, flags.namespace, st)
    let state = await withLock(platformState(await observe(cluster, flags.namespace)))
    if (flags.wait && state.phase !== 'Ready') {
      // Loaded only for --wait (ora and the watches), so a plain status starts faster.
      const { waitReady } = await import('../operations/status-wait.js')
      state = await waitReady(
        cluster,
        flags.namespace,
        state,
        waitMs,
        !flags.json && format === 'table' && !!process.stderr.isTTY && !process.env.CI,
      )
      state = await withLock(state)
    }
    print(state)
    if (flags.wait && state.phase !== 'Ready')
      throw new UserError(
        `the platform in ${flags.namespace} is not Ready after ${flags.timeout}: ${phaseText(state)}`,
        ExitCode.Timeout,
        state.problems[0] ?? 'see the components above',
      )
    if (flags.watch) state = await this.printChanges(cluster, flags.namespace, state, format === 'table', print)
    if (state.phase !== 'Ready') this.exit(ExitCode.NotReady)
  }

  /** Prints the platform on every change (stages, conditions, endpoints) until interrupted; the last state seen. */
  private async printChanges(
    cluster: Cluster,
    namespace: string,
    first: PlatformState,
    table: boolean,
    print: (state: PlatformState) => void,
  ): Promise<PlatformState> {
    const { PlatformWatch } = await import('../operations/follow.js')
    const watch: Watcher = new PlatformWatch(cluster, namespace).start()
    // What counts as a change: stages and conditions, not the ages that grow every second.
    const key = (st: PlatformState) =>
      JSON.stringify(st.components.map(({ ageSeconds: _a, ...c }) => c)) + st.phase + JSON.stringify(st.endpoints)
    let state = first
    let last = key(state)
    await new Promise<void>((resolve) => {
      let settle: NodeJS.Timeout | undefined
      // A burst of events is one print, half a second after its first: never later, so a change that keeps
      // moving (a drain, layer after layer) is shown as it goes, not once it has ended.
      watch.onChange(() => {
        settle ??= setTimeout(report, 500)
      })
      const report = () => {
        settle = undefined
        // Until every watch has listed, a snapshot is part of the cluster, not a change in it.
        if (!watch.primed()) return
        state = { ...platformState(watch.snapshot()), lock: state.lock, generation: state.generation }
        const now = key(state)
        if (now === last) return
        last = now
        if (table) this.log('\n' + stamp(phaseText(state)))
        print(state)
      }
      process.once('SIGINT', () => {
        clearTimeout(settle)
        watch.stop()
        resolve()
      })
    })
    return state
  }
}

/** The run holding the lock, and the engine generation (contract section 0): read beside the platform. */
async function withRunAndGeneration(cluster: Cluster, namespace: string, st: PlatformState): Promise<PlatformState> {
  const [held, generation] = await Promise.all([
    readLock(cluster, namespace),
    st.phase === 'NotInstalled' ? null : detectGeneration(cluster),
  ])
  return {
    ...st,
    lock: held ? { holder: held.holder, command: held.command, since: held.since } : null,
    generation,
  }
}
