import { Flags } from '@oclif/core'
import { KrateoCommand, prose } from '../cli/base-command.js'
import { checkReachable, loadCluster } from '../cluster/cluster.js'
import { Helm } from '../cluster/helm.js'
import { detectGeneration } from '../cluster/engine.js'
import { observe } from '../cluster/observe.js'

export default class Version extends KrateoCommand {
  static override summary =
    'Show the versions of this CLI and helm, and with a cluster those of Kubernetes, the installer and the engine generation'
  static override description = prose(
    `Never fails for what it cannot reach: each part it cannot tell says why. Exit code 0.`,
  )
  static override examples = [
    '<%= config.bin %> version',
    '<%= config.bin %> version --json',
    '<%= config.bin %> version --client',
  ]

  static override flags = {
    client: Flags.boolean({ description: 'only this CLI and helm; do not contact the cluster', default: false }),
    helm: Flags.string({ description: 'path of the helm binary (default: $HELM_BIN, then helm on PATH)' }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Version)
    const out: Record<string, string | null> = {
      cli: this.config.version,
      node: process.version,
      helm: null,
      kubernetes: null,
      installer: null,
      engineGeneration: null,
    }
    const notes: string[] = []
    try {
      out.helm = (await new Helm({ bin: flags.helm }).checkVersion()).text
    } catch (err) {
      notes.push(`helm: ${(err as Error).message}`)
    }
    if (!flags.client) {
      try {
        const cluster = loadCluster(flags)
        out.kubernetes = await checkReachable(cluster, 10_000)
        const obs = await observe(cluster, flags.namespace)
        out.installer =
          (obs.cds.get('installer')?.spec as { chart?: { version?: string } } | undefined)?.chart?.version ??
          'not installed'
        out.engineGeneration = await detectGeneration(cluster)
      } catch (err) {
        notes.push(`cluster: ${(err as Error).message}`)
      }
    }
    if (flags.json) return this.printJson({ ...out, notes })
    this.log(`krateo-installer ${out.cli} (Node.js ${out.node})`)
    this.log(`helm               ${out.helm ?? 'not available'}`)
    if (!flags.client) {
      this.log(`Kubernetes         ${out.kubernetes ?? 'not reachable'}`)
      this.log(
        `installer          ${out.installer ?? 'unknown'}${out.installer && out.installer !== 'not installed' ? ` in ${flags.namespace}` : ''}`,
      )
      this.log(`engine generation  ${out.engineGeneration ?? 'unknown'}`)
    }
    for (const n of notes) this.log(`  (${n})`)
  }
}
