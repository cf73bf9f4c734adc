import { KrateoCommand } from '../lib/base-command.js'
import { checkReachable, loadCluster } from '../lib/cluster.js'

export default class Status extends KrateoCommand {
  static override summary = 'Show where the Krateo platform and each of its components stand'

  async run(): Promise<void> {
    const { flags } = await this.parse(Status)
    this.verbose = flags.verbose
    const cluster = loadCluster(flags)
    const version = await checkReachable(cluster)
    if (flags.json) this.printJson({ server: cluster.server, version })
    else this.log(`cluster ${cluster.server} (${version})`)
  }
}
