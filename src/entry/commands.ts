// Every command of the CLI, by id, for oclif's "explicit" discovery. The build bundles this file with everything it
// imports into one module (dist/entry/commands.js, package.json "oclif.commands"): loading one file instead of about a
// thousand (client-node alone is 967) makes a command start three times faster. The single executable bundles it
// too (sea.ts).
import Check from '../commands/check.js'
import Install from '../commands/install.js'
import Status from '../commands/status.js'
import Uninstall from '../commands/uninstall.js'
import Upgrade from '../commands/upgrade.js'
import Version from '../commands/version.js'

/** What oclif's explicit discovery reads (package.json oclif.commands.identifier). */
export const COMMANDS = {
  check: Check,
  install: Install,
  status: Status,
  uninstall: Uninstall,
  upgrade: Upgrade,
  version: Version,
}
