import { Flags, type Interfaces } from '@oclif/core'
import { KrateoCommand, prose } from '../cli/base-command.js'
import { loadCluster } from '../cluster/cluster.js'
import { chartAccessFlags, helmFrom, registryPassword } from '../cli/command-flags.js'
import { DEFAULT_CHART, DEFAULT_VERSION, NEWER_CHART, defaultChartFor, checkNamespaceSets } from '../cluster/chart.js'
import {
  type InstallOptions,
  type Plan,
  checkInstallable,
  planDocument,
  planText,
  preflight,
} from '../operations/install/preflight.js'
import { bootstrapSteps } from '../operations/install/bootstrap.js'
import { currentState, followStep, summary } from '../operations/follow-ready.js'
import type { PlatformState } from '../platform/state.js'
import { apiCall } from '../cluster/cluster.js'
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
    const opts = await installOptions(flags)
    const ns = opts.namespace
    const cluster = loadCluster(flags)
    const helm = helmFrom(flags)
    const started = Date.now()
    const run = {
      cluster,
      namespace: ns,
      command: 'install' as const,
      resumeHint: 'nothing is half-applied; run the same install command again to resume',
      timeoutMs: opts.timeoutMs,
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
        if (flags.json) this.printJson(planDocument(plan!))
        else this.log(planText(plan!, opts))
        return
      }
      const before = await currentState(cluster, ns)
      if (before.phase === 'Ready' && before.installerVersion === plan!.rendered.chartVersion) {
        if (flags.json) this.printJson({ result: 'already-installed', status: statusDocument(before) })
        else
          this.log(
            `Already installed and Ready: installer ${before.installerVersion} in ${ns}; nothing to do.\n\n${summary(before, 0)}`,
          )
        return
      }
      await apiCall(cluster, `create namespace ${ns}`, () => ensureNamespace(cluster, ns))
      await op.begin()
      checkInstallable(await currentState(cluster, ns), plan!, ns, this.config.bin)
      await op.steps([
        ...bootstrapSteps(cluster, helm, opts, plan!, op),
        ...(flags.wait ? [followStep(cluster, op, opts)] : []),
      ])
      this.result(await currentState(cluster, ns), flags, started)
    })
  }

  private result(after: PlatformState, flags: { json: boolean; wait: boolean }, started: number): void {
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
  }
}

type InstallFlags = Interfaces.InferredFlags<typeof Install.flags & typeof KrateoCommand.baseFlags>

/** The flags as install options: the values the flags stand for go to helm like --set. */
async function installOptions(flags: InstallFlags): Promise<InstallOptions> {
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
  return {
    namespace: flags.namespace,
    source: { chart: flags.chart ?? defaultChartFor(flags.version), version: flags.version },
    values: { files: flags.values, sets: [...featureSets(flags.feature), ...flags.set], derived },
    timeoutMs,
    wait: flags.wait,
    accelerate: flags.accelerate,
    registryUsername: flags['registry-username'],
    registryPassword: password,
    featureRequests: parseFeatures(flags.feature),
  }
}
