import { Flags } from '@oclif/core'
import { KrateoCommand, prose } from '../cli/base-command.js'
import { loadCluster } from '../cluster/cluster.js'
import { DEFAULT_CHART, DEFAULT_VERSION, NEWER_CHART, defaultChartFor } from '../cluster/chart.js'
import { chartAccessFlags, helmFrom } from '../cli/command-flags.js'
import { platformChecks, preInstallChecks, renderChecks, runChecks } from '../operations/check.js'
import { ExitCode } from '../platform/errors.js'
import { checkNamespace } from '../platform/flags.js'

export default class Check extends KrateoCommand {
  static override summary =
    'Check that the cluster is ready for an install (--pre), or that the running platform is healthy'
  static override description =
    prose(`--pre verifies what install's preflight verifies, read-only: cluster, helm, chart and values, component DAG,
permissions. Without --pre it checks the running platform: engine, every component, endpoints, the portal, objects
left Terminating, a run in progress. One ✔/✖ line per check, with a hint for each failure.
Exit codes: 0 every check passed, 10 some check failed, 2 bad flag.`)

  static override examples = [
    '<%= config.bin %> check --pre',
    '<%= config.bin %> check',
    '<%= config.bin %> check --json',
  ]

  static override flags = {
    pre: Flags.boolean({
      description: 'check the cluster before an install instead of a running platform',
      default: false,
    }),
    chart: Flags.string({
      description: `with --pre: installer chart (oci://, a directory or a .tgz; default by --version: ${DEFAULT_CHART} up to 0.2.53, ${NEWER_CHART} after)`,
    }),
    version: Flags.string({ description: 'with --pre: installer chart version', default: DEFAULT_VERSION }),
    helm: chartAccessFlags.helm,
    'plain-http': chartAccessFlags['plain-http'],
    'insecure-skip-tls-verify': chartAccessFlags['insecure-skip-tls-verify'],
    'ca-file': chartAccessFlags['ca-file'],
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Check)
    const ns = checkNamespace(flags.namespace)
    const cluster = loadCluster(flags)
    const { checks, needs } = flags.pre
      ? preInstallChecks(
          cluster,
          helmFrom({ ...flags, 'registry-password-stdin': false }),
          ns,
          { chart: flags.chart ?? defaultChartFor(flags.version), version: flags.version },
          { files: [], sets: [], derived: { 'namespaces.krateo': ns } },
        )
      : platformChecks(cluster, ns)
    const results = await runChecks(checks, needs)
    const ok = results.every((r) => r.ok)
    if (flags.json) this.printJson({ ok, checks: results })
    else
      this.log(
        `${renderChecks(results)}\n\n${ok ? 'All checks passed.' : `${results.filter((r) => !r.ok).length} of ${results.length} checks failed.`}`,
      )
    if (!ok) this.exit(ExitCode.NotReady)
  }
}
