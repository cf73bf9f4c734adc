// Every command of the CLI, by id, for oclif's "explicit" discovery: what the single executable runs,
// where no file can be loaded by path.
import Check from '../commands/check.js'
import Install from '../commands/install.js'
import Status from '../commands/status.js'
import Uninstall from '../commands/uninstall.js'
import Upgrade from '../commands/upgrade.js'
import Version from '../commands/version.js'

export const OWN_COMMANDS = {
  check: Check,
  install: Install,
  status: Status,
  uninstall: Uninstall,
  upgrade: Upgrade,
  version: Version,
}
