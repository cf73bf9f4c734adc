import { Flags } from '@oclif/core'
import { KrateoCommand, prose } from '../cli/base-command.js'
import { loadCluster } from '../cluster/cluster.js'
import { ExitCode, UserError } from '../platform/errors.js'
import { chartAccessFlags, helmFrom, registryPassword } from '../cli/command-flags.js'
import { DEFAULT_CHART, DEFAULT_VERSION, NEWER_CHART, defaultChartFor, checkNamespaceSets } from '../cluster/chart.js'
import { type InstallOptions, type Plan, planText, preflight } from '../operations/install/preflight.js'
import { bootstrapSteps } from '../operations/install/bootstrap.js'
import { currentState, followToReady, summary } from '../operations/follow-ready.js'
import { apiCall } from '../cluster/cluster.js'
import type { Step } from '../ui/progress.js'
import { Operation } from '../operations/operation.js'
import { statusDocument } from '../ui/output.js'
import { checkNamespace, featureSets, parseDuration, parseFeatures } from '../platform/flags.js'
import { REGISTRY_SECRET } from '../operations/inventory.js'
import { ensureNamespace } from '../cluster/kube-write.js'

export default class Install extends KrateoCommand {
  static override summary = 'Install the Krateo platform and follow it until it is Ready'
  static override description =
    prose(`Runs the bootstrap phase of the Krateo installer chart itself (helm install in bootstrap mode with the
chart's hooks skipped, then each step of its post-install hook as a visible step), then follows the
self-reconcile of every component (CompositionDefinition -> CRD -> Composition -> running) and prints how to
reach the platform. Re-running resumes a partial install; on a Ready platform it does nothing. Another
installer version already installed is refused: moving versions is what upgrade does. A platform installed by a plain helm install, under any release
name, is adopted (that release is upgraded with its values kept). The layers render one after the other because
install nudges the installer's cdc through the annotation it watches; it never restarts a controller.
Ready means running: the engine's Ready only says helm returned, so install also waits for every workload to
be available and for the portal to be wired to its peers (the chart wires LoadBalancer IPs only: a NodePort
install ends with a note saying so, and no portal URL).

Exit codes: 0 Ready (or accepted with --no-wait), 2 bad flag or another version installed, 3 cluster unreachable, 4 helm missing or
unsupported, 5 permission denied, 6 timeout, 7 stuck, 8 chart or values invalid, 9 interrupted, 11 another run holds the lock.`)

  static override examples = [
    '<%= config.bin %> install --exposure LoadBalancer',
    '<%= config.bin %> install --exposure LoadBalancer --exposure-port 8443 --feature agents=true',
    '<%= config.bin %> install --dry-run',
    'echo "$TOKEN" | <%= config.bin %> install --registry-username bot --registry-password-stdin',
  ]

  static override flags = {
    ...chartAccessFlags,
    exposure: Flags.string({
      description: 'how browser-facing services are exposed',
      options: ['NodePort', 'LoadBalancer'],
    }),
    'exposure-port': Flags.integer({
      description:
        "the Service port of every exposed component (the chart's exposure.port); node ports stay Kubernetes' choice",
      min: 1,
      max: 65535,
    }),
    chart: Flags.string({
      description: `installer chart: an oci:// reference, a local directory or a .tgz (default: ${DEFAULT_CHART} up to 0.2.53, ${NEWER_CHART} after)`,
    }),
    version: Flags.string({
      description: 'installer chart version (ignored for a local chart)',
      default: DEFAULT_VERSION,
    }),
    values: Flags.string({
      char: 'f',
      description: 'values file (repeatable, helm semantics)',
      multiple: true,
      default: [],
    }),
    set: Flags.string({
      description: 'set a value, key=value (repeatable, helm semantics)',
      multiple: true,
      default: [],
    }),
    feature: Flags.string({
      description: 'turn a feature on or off, name=true|false (repeatable)',
      multiple: true,
      default: [],
    }),
    timeout: Flags.string({
      description:
        'how long the changes may take, from the first change (the read-only checks and any question before do not count), e.g. 900s, 20m',
      default: '20m',
    }),
    wait: Flags.boolean({
      description: 'wait until every component is Ready (--no-wait returns once the Installer CR is accepted)',
      default: true,
      allowNo: true,
    }),
    'dry-run': Flags.boolean({
      description: 'print the plan (objects, DAG layers, versions) and change nothing',
      default: false,
    }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Install)
    this.verbose = flags.verbose
    const timeoutMs = parseDuration(flags.timeout)
    checkNamespace(flags.namespace)
    const password = await registryPassword(flags)
    checkNamespaceSets(flags.set, flags.namespace)
    const derived: Record<string, string | number | boolean> = {
      ...(flags.exposure ? { 'exposure.type': flags.exposure } : {}),
      ...(flags['exposure-port'] ? { 'exposure.port': flags['exposure-port'] } : {}),
      'namespaces.krateo': flags.namespace,
      // The chart's real registryAuth.passwordRef (its fields default to ""): the Secret this CLI writes.
      ...(flags['registry-username']
        ? {
            'registryAuth.enabled': true,
            'registryAuth.username': flags['registry-username'],
            'registryAuth.passwordRef.name': REGISTRY_SECRET,
            'registryAuth.passwordRef.key': 'password',
          }
        : {}),
    }
    const sets = [...featureSets(flags.feature), ...flags.set]
    const opts: InstallOptions = {
      namespace: flags.namespace,
      source: { chart: flags.chart ?? defaultChartFor(flags.version), version: flags.version },
      values: { files: flags.values, sets, derived },
      timeoutMs,
      wait: flags.wait,
      accelerate: flags.accelerate,
      registryUsername: flags['registry-username'],
      registryPassword: password,
      featureRequests: parseFeatures(flags.feature),
    }
    const cluster = loadCluster(flags)
    const helm = helmFrom(flags)
    const started = Date.now()
    const run = {
      cluster,
      namespace: flags.namespace,
      command: 'install' as const,
      resumeHint: 'nothing is half-applied; run the same install command again to resume',
      timeoutMs,
      json: flags.json,
    }
    await Operation.run(run, async (op) => {
      let plan: Plan | undefined
      await op.steps([
        {
          title: 'Preflight (read-only)',
          run: async (r) => {
            plan = await preflight(cluster, helm, opts, r)
            return `installer ${plan.rendered.chartVersion}`
          },
        },
      ])
      if (flags['dry-run']) {
        if (flags.json)
          this.printJson({
            result: 'dry-run',
            chartVersion: plan!.rendered.chartVersion,
            objects: plan!.rendered.manifests.map((m) => ({
              kind: m.kind,
              name: m.metadata.name,
              namespace: m.metadata.namespace ?? null,
            })),
            components: plan!.components.map((c) => ({
              ...c,
              enabled: !c.feature || plan!.features[c.feature] === true,
            })),
          })
        else this.log(planText(plan!, opts))
        return
      }
      const before = await currentState(cluster, flags.namespace)
      if (before.phase === 'Ready' && before.installerVersion === plan!.rendered.chartVersion) {
        if (flags.json) this.printJson({ result: 'already-installed', status: statusDocument(before) })
        else
          this.log(
            `Already installed and Ready: installer ${before.installerVersion} in ${flags.namespace}; nothing to do.\n\n${summary(before, 0)}`,
          )
        return
      }
      await apiCall(cluster, `create namespace ${flags.namespace}`, () => ensureNamespace(cluster, flags.namespace))
      await op.begin()
      // Judged under the lock, on the platform as it is now: another run may have changed it since the preflight.
      const now = await currentState(cluster, flags.namespace)
      if (
        now.installerVersion &&
        now.phase !== 'NotInstalled' &&
        now.installerVersion !== plan!.rendered.chartVersion
      ) {
        // Re-applying another version the way the chart's hook does would prune and re-create every component
        // whose version changes; upgrade moves them in place.
        throw new UserError(
          `installer ${now.installerVersion} is already installed in ${flags.namespace}; install does not change versions`,
          ExitCode.Usage,
          `run: ${this.config.bin} upgrade --version ${plan!.rendered.chartVersion} (add --dry-run to see what moves)`,
        )
      }
      // A running uninstall is refused by the lock itself (exit 11), with its holder; one that stopped half-way
      // left the Installer paused for it.
      if (now.pausedBy && / uninstall /.test(now.pausedBy)) {
        // Patching a platform half-way through its uninstall would fight the drain.
        throw new UserError(
          `an uninstall of the platform in ${flags.namespace} is under way (${now.pausedBy.replace(/: re-run.*$/, '')})`,
          ExitCode.Usage,
          `finish it first with: ${this.config.bin} uninstall -n ${flags.namespace}, then install again`,
        )
      }
      const steps: Step[] = bootstrapSteps(cluster, helm, opts, plan!, op)
      if (flags.wait) {
        steps.push({
          title: 'Follow the self-reconcile',
          run: async (r) => {
            const res = await followToReady(cluster, op.platformWatch(), opts, op.interrupt, r, op.deadline)
            return `${res.state.ready}/${res.state.total} Ready${res.nudges ? `, ${res.nudges} nudges saved resync waits` : ''}`
          },
        })
      }
      await op.steps(steps)
      const after = await currentState(cluster, flags.namespace)
      if (flags.json)
        this.printJson({
          result: flags.wait ? 'installed' : 'accepted',
          elapsedSeconds: Math.round((Date.now() - started) / 1000),
          status: statusDocument(after),
        })
      else if (flags.wait) this.log('\n' + summary(after, Date.now() - started))
      else
        this.log(
          `\nThe Installer CR is accepted; the platform reconciles on its own. Follow it with: ${this.config.bin} status --watch`,
        )
    })
  }
}
