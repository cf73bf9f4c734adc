import { Flags } from '@oclif/core'
import { KrateoCommand, prose } from '../cli/base-command.js'
import { apiFailure, checkReachable, loadCluster } from '../cluster/cluster.js'
import { UserError, printable } from '../platform/errors.js'
import type { Helm } from '../cluster/helm.js'
import { helmFrom } from '../cli/command-flags.js'
import { observe } from '../cluster/observe.js'
import { Teardown } from '../operations/teardown.js'
import { UNINSTALL_ACCESS, checkAccess } from '../cluster/access.js'
import { Operation } from '../operations/operation.js'
import { checkNamespace, parseDuration } from '../platform/flags.js'
import { type Inventory, platformPresent, readInventory } from '../operations/inventory.js'
import { changedSinceConfirmed, purgeKept, uninstallSteps } from '../operations/uninstall.js'
import { uninstallPlanDocument, uninstallPlanText } from '../operations/uninstall-plan.js'
import { ask, canAsk, confirmOrRefuse } from '../ui/confirm.js'
import { type Residue, residue } from '../operations/residue.js'
import { RECORD_NAMESPACE } from '../cluster/teardown-record.js'

export default class Uninstall extends KrateoCommand {
  static override summary =
    "Remove the Krateo platform in order, so nothing is left Terminating, and nothing that is not the platform's is touched"
  static override description =
    prose(`Only what is provably the platform's is removed: the Installer CR, the CompositionDefinitions named after the
installer and its components that the installer's release rendered (and the CRDs core-provider generated for them), the
bootstrap release (found from helm's annotation on the installer-self-cr ConfigMap, whatever its name), this
platform's core-provider webhook, cdc bundles and registry Secret. Your own CompositionDefinitions,
Compositions, CRDs, webhooks and apps are listed as "not the platform's" and kept.

Stage 1, ordered drain: pauses the Installer (so it cannot re-create what is being deleted), then deletes
the component Compositions consumers first, each waited until it and what it managed are gone while its
providers still run; independent branches drain in parallel.
Stage 2, bootstrap teardown: deletes the Installer CR and the platform's CompositionDefinitions while
core-provider runs, then helm-uninstalls the bootstrap release with its hooks skipped.
Stage 3, sweep: deletes what nothing can recreate or finalize any more, then lists what is kept on purpose.

What it found is recorded first (ConfigMap kube-system/krateo-installer-teardown.<namespace>, where only cluster admins write), so a re-run resumes where a failed or
interrupted one stopped, the sweep included. One run at a time: install, upgrade and uninstall hold a Lease
(krateo-installer) in the namespace.

On a terminal it shows the context, cluster and namespace and asks once (--yes skips). --force and --purge
need --yes when there is no terminal; without it they are refused before anything changes.

Exit codes: 0 done or nothing installed, 2 bad flag, 3 cluster unreachable, 4 helm missing, 5 permission
denied, 6 timeout, 7 stuck (the object, its finalizer and the controller that should clear it are named),
9 interrupted or not confirmed (re-run to continue), 11 another run holds the lock.`)

  static override examples = [
    '<%= config.bin %> uninstall',
    '<%= config.bin %> uninstall --dry-run',
    '<%= config.bin %> uninstall --purge --yes',
  ]

  static override flags = {
    timeout: Flags.string({
      description:
        'how long the changes may take, from the first change (the read-only checks and any question before do not count), e.g. 600s, 15m',
      default: '15m',
    }),
    'dry-run': Flags.boolean({
      description: "print the teardown plan (what is deleted, what is kept as not the platform's) and change nothing",
      default: false,
    }),
    purge: Flags.boolean({
      description:
        "also delete what is kept on purpose and provably the platform's: PVCs of its StatefulSets, the namespace when nothing else is in it, the CompositionDefinition CRD when no CompositionDefinition is left in the cluster",
      default: false,
    }),
    yes: Flags.boolean({ char: 'y', description: 'do not ask for confirmation (for CI)', default: false }),
    force: Flags.boolean({
      description:
        "last resort, for the platform's own objects only: remove the finalizers of what is stuck (its controller down, or past --timeout), and this platform's webhook when its core-provider is down; names each and asks (or needs --yes)",
      default: false,
    }),
    helm: Flags.string({ description: 'path of the helm binary (default: $HELM_BIN, then helm on PATH)' }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Uninstall)
    this.verbose = flags.verbose
    const timeoutMs = parseDuration(flags.timeout)
    const ns = checkNamespace(flags.namespace)
    const cluster = loadCluster(flags)
    await checkReachable(cluster)
    const helm = helmFrom(flags)
    await helm.checkVersion()
    const takeInventory = async () =>
      await readInventory(cluster, helm, await observe(cluster, ns)).catch((err) => {
        throw err instanceof UserError ? err : apiFailure(err, cluster, 'take the inventory of the platform')
      })
    const inv = await takeInventory()
    let current = inv
    const present = platformPresent(inv)
    // Proving the namespace holds nothing foreign costs a list per kind: only when --purge is to act on it.
    const readResidue = async (): Promise<Residue> =>
      await residue(cluster, ns, current.record, flags.purge).catch((err) => {
        throw apiFailure(err, cluster, 'list what is left')
      })
    // Nothing of a platform is here, and no record says one was: nothing is deleted, --purge included.
    if (!present && !(flags.purge && inv.hadRecord))
      return this.nothingInstalled(ns, inv.hadRecord ? await readResidue() : { items: [], kept: [] }, flags)
    // Removing the platform removes kinds it ships, and with them objects that are someone else's.
    const blocked = present && !flags['dry-run'] ? changedSinceConfirmed(inv, inv, false) : null
    if (blocked) throw new UserError(blocked.why, blocked.exit, blocked.hint)
    if (flags['dry-run']) {
      if (flags.json) this.printJson(uninstallPlanDocument(inv))
      else this.log(uninstallPlanText(inv))
      return
    }
    const where = `context ${cluster.context}, cluster ${cluster.server}, namespace ${ns}`
    if (!flags.json) {
      this.log(`Uninstalling Krateo${inv.record.release ? ` (release ${inv.record.release})` : ''} from ${where}`)
      if (inv.keptRelease) this.log(`Not the platform's, kept: ${printable(inv.keptRelease)}`)
    }
    const asked = await this.confirmUninstall(flags, inv, where, present)
    await checkAccess(cluster, UNINSTALL_ACCESS(ns, RECORD_NAMESPACE, flags.purge))
    const run = {
      cluster,
      namespace: ns,
      command: 'uninstall' as const,
      resumeHint: 'nothing is half-removed; run the same uninstall command again to continue',
      timeoutMs,
      json: flags.json,
    }
    await Operation.run(run, async (op) => {
      await op.begin()
      // Read again under the lock: what is acted on is what is there now; what the question did not cover stops here.
      const live = await takeInventory()
      const changed = changedSinceConfirmed(inv, live, asked)
      if (changed) throw new UserError(changed.why, changed.exit, changed.hint)
      current = live
      const teardown = await this.tearDown(op, live, helm, flags)
      let left = await readResidue()
      const purged = flags.purge && left.items.length > 0
      if (purged) left = await purgeKept(op, teardown, left, readResidue, flags.yes)
      this.result(ns, present, purged, teardown.forced, left, flags.json)
    })
  }

  /** The three stages over the inventory read under the lock; a run stopped before any drain takes its pause back. */
  private async tearDown(
    op: Operation,
    live: Inventory,
    helm: Helm,
    flags: { force: boolean; yes: boolean },
  ): Promise<Teardown> {
    const confirm = async (q: string) => flags.yes || (canAsk() && (await ask(q)))
    const teardown = new Teardown(op.cluster, op.namespace, op.interrupt, op.deadline, {
      force: flags.force,
      inventory: live,
      confirm,
      guard: op.guard,
    })
    op.onEnd(() => teardown.dispose())
    try {
      await op.steps(platformPresent(live) ? uninstallSteps(live, teardown, helm) : [])
    } catch (err) {
      // Before anything was drained the pause is only in the way: take it back. After, resuming needs it.
      if (await teardown.unpauseIfOurs(live.installer))
        process.stderr.write('The Installer was unpaused: nothing had been drained yet.\n')
      throw err
    }
    return teardown
  }

  private nothingInstalled(ns: string, left: Residue, flags: { purge: boolean; json: boolean }): void {
    const note = flags.purge ? `--purge removed nothing: no Krateo platform is or was installed in ${ns}` : ''
    if (flags.json)
      this.printJson({ result: 'nothing-installed', residue: left.items, kept: left.kept, note: note || null })
    else this.log([`Nothing to uninstall in ${ns}.`, note, ...listing(left)].filter(Boolean).join('\n'))
  }

  /** Asks what must be asked before anything changes; true when a person was asked (and said yes). */
  private async confirmUninstall(
    flags: { yes: boolean; force: boolean; purge: boolean },
    inv: Inventory,
    where: string,
    present: boolean,
  ): Promise<boolean> {
    const destructive = [flags.force ? '--force' : '', flags.purge ? '--purge' : ''].filter(Boolean).join(' and ')
    const unreadable = present && inv.unreadableAfter.length > 0
    let asked = false
    if (unreadable) {
      asked = !flags.yes
      // Not deleted, but their reads need the core-provider this uninstall removes: the user decides.
      const n = inv.unreadableAfter.length
      await confirmOrRefuse(
        'uninstall',
        `${n} kind${n > 1 ? 's' : ''} not the platform's would be unreadable (get, list, delete fail) until a core-provider runs again, because ${n > 1 ? 'their versions convert' : 'its versions convert'} through this platform's core-provider: ${inv.unreadableAfter.join('; ')}; to keep them readable, delete their CompositionDefinitions and Compositions first`,
        flags.yes,
      )
    }
    if (destructive) {
      asked ||= !flags.yes
      await confirmOrRefuse(
        `uninstall ${destructive}`,
        `${where}; ${flags.force ? "finalizers of the platform's stuck objects may be removed (each named)" : ''}${flags.force && flags.purge ? '; ' : ''}${flags.purge ? "the platform's PVCs (their data), the namespace if nothing else is in it, and the CompositionDefinition CRD if unused are deleted" : ''}`,
        flags.yes,
      )
    } else if (!flags.yes && canAsk() && present && !unreadable) {
      asked = true
      await confirmOrRefuse('uninstall', `removes the platform from ${where}`, false)
    }
    return asked
  }

  private result(ns: string, present: boolean, purged: boolean, forced: string[], left: Residue, json: boolean) {
    if (json) {
      this.printJson({ result: 'uninstalled', purged, forced, residue: left.items, kept: left.kept })
      return
    }
    this.log(
      present
        ? `\nKrateo is uninstalled from ${ns}: no object of the platform, generated CRD, webhook, cdc bundle or helm release is left.`
        : `Nothing to uninstall in ${ns}: the platform was removed earlier.`,
    )
    if (forced.length) this.log(`Forced (check what may be left behind):\n${forced.map((f) => `  ${f}`).join('\n')}`)
    for (const l of listing(left)) this.log(l)
  }
}

function listing(left: Residue): string[] {
  return [
    ...(left.items.length
      ? [
          `Kept on purpose (remove with --purge, or by hand):\n${left.items.map((r) => `  ${r.what}\n    ${r.command}`).join('\n')}`,
        ]
      : []),
    ...(left.kept.length ? [`Kept, not the platform's alone:\n${left.kept.map((k) => `  ${k}`).join('\n')}`] : []),
  ]
}
