import { Flags, type Interfaces } from '@oclif/core'
import type { PlatformState } from '../platform/state.js'
import { KrateoCommand, prose } from '../cli/base-command.js'
import { ExitCode, UserError } from '../platform/errors.js'
import { type Cluster, loadCluster } from '../cluster/cluster.js'
import { chartAccessFlags, helmFrom, registryPassword } from '../cli/command-flags.js'
import { currentState, summary } from '../operations/follow-ready.js'
import { checkNamespaceSets } from '../cluster/chart.js'
import {
  type UpgradeOptions,
  type UpgradePlan,
  checkPlanStillHolds,
  upgradePreflight,
} from '../operations/upgrade/plan.js'
import { upgradeSteps } from '../operations/upgrade/steps.js'
import { upgradePlanText } from '../operations/upgrade/plan-text.js'
import { Teardown } from '../operations/teardown.js'
import { Operation } from '../operations/operation.js'
import { statusDocument } from '../ui/output.js'
import { checkNamespace, featureSets, parseDuration, parseFeatures } from '../platform/flags.js'
import { canAsk, confirmOrRefuse } from '../ui/confirm.js'

export default class Upgrade extends KrateoCommand {
  static override summary =
    'Move a running platform to another installer version, or switch its features, keeping runtime edits'
  static override description =
    prose(`Renders the new installer chart with the values you installed with (plus any new -f/--set), shows what
moves (components added, removed, versions old -> new, features), then: the Installer paused (for a
version move), helm upgrade of the bootstrap release (hooks skipped), removed components drained leaves first and changed
component definitions moved to their new versions dependencies first, each followed until its release runs
at the new version; the installer CompositionDefinition at the new version; a merge patch of only
components and componentValues (and the features you switch) onto the Installer CR, so spec.features and
other runtime edits survive; then every component followed until Ready, feature-off ones until drained.

Without --version the running installer version is kept: only features switch and the platform reconciles.
A lower version is refused unless --allow-downgrade. An interrupted upgrade resumes when re-run; one whose
helm upgrade failed before writing a revision (the chart could not be pulled) takes its pause back.

Exit codes: 0 done, 2 bad flag (or a refused downgrade), 3 cluster unreachable, 4 helm missing or
unsupported, 5 permission denied, 6 timeout, 7 stuck, 8 chart or values invalid, 9 interrupted,
10 nothing installed to upgrade, 11 another run holds the lock.`)

  static override examples = [
    '<%= config.bin %> upgrade --version 0.2.54 --dry-run',
    '<%= config.bin %> upgrade --version 0.2.54',
    '<%= config.bin %> upgrade --feature agents=true',
    '<%= config.bin %> upgrade --feature observability=false --json',
  ]

  static override flags = {
    ...chartAccessFlags,
    chart: Flags.string({
      description:
        'installer chart: an oci:// reference, a local directory or a .tgz (default: where the running one came from)',
    }),
    version: Flags.string({ description: 'installer chart version to move to (default: the running one)' }),
    values: Flags.string({
      char: 'f',
      description: 'values file on top of your previous values (repeatable, helm semantics)',
      multiple: true,
      default: [],
    }),
    set: Flags.string({
      description: 'set a value on top of your previous values, key=value (repeatable, helm semantics)',
      multiple: true,
      default: [],
    }),
    feature: Flags.string({
      description: 'switch a feature on the running platform, name=true|false (repeatable)',
      multiple: true,
      default: [],
    }),
    'allow-downgrade': Flags.boolean({ description: 'allow moving to an older installer version', default: false }),
    timeout: Flags.string({
      description:
        'how long the changes may take, from the first change (the read-only checks and any question before do not count), e.g. 900s, 20m',
      default: '20m',
    }),
    wait: Flags.boolean({
      description: 'follow every component until Ready (--no-wait returns once the Installer CR is patched)',
      default: true,
      allowNo: true,
    }),
    'dry-run': Flags.boolean({
      description: 'print the plan (components added, removed, moved; features) and change nothing',
      default: false,
    }),
    yes: Flags.boolean({
      char: 'y',
      description: 'do not ask for confirmation of the plan on a terminal',
      default: false,
    }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Upgrade)
    this.verbose = flags.verbose
    const opts = await upgradeOptions(flags)
    const ns = opts.namespace
    const cluster = loadCluster(flags)
    const helm = helmFrom(flags)
    const started = Date.now()
    const run = {
      cluster,
      namespace: ns,
      command: 'upgrade' as const,
      resumeHint:
        'run the same upgrade command again to resume (until then a paused Installer shows as Upgrading in status)',
      timeoutMs: opts.timeoutMs,
      json: flags.json,
    }
    await Operation.run(run, async (op) => {
      let plan: UpgradePlan | undefined
      await op.steps([
        {
          title: 'Preflight (read-only)',
          run: async (r) => {
            plan = await upgradePreflight(cluster, helm, opts, r)
            return `installer ${plan.from ?? '?'} -> ${plan.to}`
          },
        },
      ])
      const p = plan!
      if (flags['dry-run']) {
        if (flags.json) this.printJson({ result: 'dry-run', ...moves(p) })
        else this.log(upgradePlanText(p, opts))
        return
      }
      // A person at a terminal sees the plan and where it runs before anything changes.
      if (!flags.yes && canAsk() && !flags.json) await this.confirmPlan(p, opts, cluster)
      await op.begin()
      await op.steps([
        {
          title: 'Check the plan still holds (under the lock)',
          run: async () => {
            await checkPlanStillHolds(cluster, helm, ns, p)
            return 'unchanged'
          },
        },
      ])
      const teardown = new Teardown(cluster, ns, op.interrupt, op.deadline, {
        force: false,
        command: 'upgrade',
        guard: op.guard,
      })
      op.onEnd(() => teardown.dispose())
      await op.steps(upgradeSteps({ cluster, helm, opts, plan: p, run: op, teardown }))
      this.result(p, await currentState(cluster, ns), flags, started)
    })
  }

  private async confirmPlan(p: UpgradePlan, opts: UpgradeOptions, cluster: Cluster): Promise<void> {
    this.log(upgradePlanText(p, opts).replace(/\n+Dry run: nothing was changed\.\s*$/, ''))
    await confirmOrRefuse(
      'upgrade',
      `context ${cluster.context}, cluster ${cluster.server}, namespace ${opts.namespace}`,
      false,
    )
  }

  private result(p: UpgradePlan, after: PlatformState, flags: { json: boolean; wait: boolean }, started: number) {
    const result = p.direction === 'same' ? 'reconciled' : p.direction === 'downgrade' ? 'downgraded' : 'upgraded'
    if (flags.json)
      this.printJson({
        result: flags.wait ? result : 'accepted',
        ...moves(p),
        elapsedSeconds: Math.round((Date.now() - started) / 1000),
        status: statusDocument(after),
      })
    else if (flags.wait)
      this.log(
        `\n${p.direction === 'same' ? `Installer ${p.to} reconciled` : `Installer ${p.from} -> ${p.to}`}${p.features.changes.length ? `; features ${p.features.changes.map((f) => `${f.name}=${f.to}`).join(', ')}` : ''}.\n${summary(after, Date.now() - started)}`,
      )
    else
      this.log(
        `\nThe Installer CR is patched; the platform reconciles on its own. Follow it with: ${this.config.bin} status --watch`,
      )
  }
}

type UpgradeFlags = Interfaces.InferredFlags<typeof Upgrade.flags & typeof KrateoCommand.baseFlags>

async function upgradeOptions(flags: UpgradeFlags): Promise<UpgradeOptions> {
  const timeoutMs = parseDuration(flags.timeout)
  checkNamespace(flags.namespace)
  if (flags['registry-username'] && !flags.chart) {
    // Without --chart the chart location comes from the cluster: credentials go only where the user said.
    throw new UserError(
      '--registry-username needs --chart: without it upgrade takes the chart location from the cluster, and credentials go only to a registry you name',
      ExitCode.Usage,
      'pass --chart oci://<your registry>/installer as well',
    )
  }
  checkNamespaceSets(flags.set, flags.namespace)
  const featureRequests = parseFeatures(flags.feature)
  const password = await registryPassword(flags)
  return {
    namespace: flags.namespace,
    source: { chart: flags.chart ?? '', version: flags.version },
    values: { files: flags.values, sets: [...featureSets(flags.feature), ...flags.set] },
    timeoutMs,
    wait: flags.wait,
    accelerate: flags.accelerate,
    registryUsername: flags['registry-username'],
    registryPassword: password,
    featureRequests,
    allowDowngrade: flags['allow-downgrade'],
  }
}

/** What the plan moves, as data (--json). */
function moves(p: UpgradePlan) {
  return {
    from: p.from,
    to: p.to,
    direction: p.direction,
    changed: p.diff.changed,
    added: p.diff.added.map((c) => c.name),
    removed: p.diff.removed.map((c) => c.name),
    features: p.features.changes,
  }
}
