import { Flags } from '@oclif/core'
import { createInterface } from 'node:readline/promises'
import { KrateoCommand } from '../lib/base-command.js'
import { checkReachable, loadCluster } from '../lib/cluster.js'
import { ExitCode, UserError } from '../lib/errors.js'
import { Helm } from '../lib/helm.js'
import { observe } from '../lib/observe.js'
import { type InstallerSpec, parseComponents } from '../lib/components.js'
import { Teardown, deletableNow, drainWaves } from '../lib/teardown.js'
import { checkAccess } from '../lib/access.js'
import { liveProgressWanted, runSteps, type Step } from '../lib/progress.js'
import { Interrupt } from '../lib/interrupt.js'
import { parseDuration } from '../lib/flags.js'
import { releaseStatus } from '../lib/install.js'
import { BOOTSTRAP_RELEASE } from '../lib/chart.js'

export default class Uninstall extends KrateoCommand {
  static override summary = 'Remove the Krateo platform in order, so nothing is left Terminating'
  static override description = `Stage 1, ordered drain: pauses the Installer (so it cannot re-create what is being deleted), then deletes
the component Compositions consumers first, each waited until it and what it managed are gone while its
providers still run; independent branches drain in parallel.
Stage 2, bootstrap teardown: deletes the Installer CR and the CompositionDefinitions while core-provider runs,
then helm-uninstalls the bootstrap release with its hooks skipped.
Stage 3, sweep: deletes what nothing can recreate or finalize any more (the core-provider webhook, generated
hyperdx CRDs, leftover cdc bundles), then lists what is kept on purpose (--purge deletes it too).

Exit codes: 0 done or nothing installed, 2 bad flag, 3 cluster unreachable, 4 helm missing, 5 permission
denied, 6 timeout, 7 stuck (the object, its finalizer and the controller that should clear it are named),
9 interrupted (re-run to continue).`

  static override examples = ['<%= config.bin %> uninstall', '<%= config.bin %> uninstall --dry-run', '<%= config.bin %> uninstall --purge --yes']

  static override flags = {
    timeout: Flags.string({ description: 'how long to wait in all, e.g. 600s, 15m', default: '15m' }),
    'dry-run': Flags.boolean({ description: 'print the teardown plan and change nothing', default: false }),
    purge: Flags.boolean({ description: 'also delete what is kept on purpose (namespace, PVCs and their data, CRDs from crds/)', default: false }),
    yes: Flags.boolean({ char: 'y', description: 'do not ask for confirmation (for CI)', default: false }),
    force: Flags.boolean({ description: 'last resort: remove the finalizers of what stays stuck, after naming each', default: false }),
    helm: Flags.string({ description: 'path of the helm binary (default: $HELM_BIN, then helm on PATH)' }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Uninstall)
    this.verbose = flags.verbose
    const timeoutMs = parseDuration(flags.timeout)
    const ns = flags.namespace
    const cluster = loadCluster(flags)
    await checkReachable(cluster)
    const helm = new Helm({ bin: flags.helm, kubeconfig: flags.kubeconfig, context: flags.context, verbose: flags.verbose ? (m) => process.stderr.write(m + '\n') : undefined })
    await helm.checkVersion()
    const obs = await observe(cluster, ns)
    const release = await releaseStatus(helm, ns)
    const components = obs.installer ? parseComponents((obs.installer.spec ?? {}) as InstallerSpec) : []
    const existing = new Set(components.filter((c) => obs.compositions.has(c.name)).map((c) => c.name))
    const interrupt = new Interrupt('nothing is half-removed; run the same uninstall command again to continue')
    const teardown = new Teardown(cluster, ns, interrupt, Date.now() + timeoutMs, flags.force)
    try {
      const nothing = !obs.installer && obs.cds.size === 0 && obs.crds.size === 0 && !release
      if (nothing) {
        const residue = await teardown.residue()
        if (flags.json) this.printJson({ result: 'nothing-installed', residue })
        else this.log(`Nothing to uninstall in ${ns}.${residue.length ? `\nKept on purpose:\n${residue.map((r) => `  ${r.what}: ${r.command}`).join('\n')}` : ''}`)
        if (!flags.purge || !residue.length) return
      }
      if (flags['dry-run']) {
        const waves = drainWaves(components, existing)
        const plan = [
          `Plan: uninstall Krateo from ${ns}`,
          '', 'Stage 1, ordered drain (Installer paused first; each wave after the previous one is gone):',
          ...waves.map((w, i) => `  wave ${i + 1}: ${w.join(', ')}`),
          '', `Stage 2: delete Installer ${ns}/installer and ${obs.cds.size} CompositionDefinitions, wait for their ${obs.crds.size} CRDs to go; helm uninstall ${BOOTSTRAP_RELEASE} (hooks skipped)`,
          'Stage 3: sweep the core-provider webhook, generated *.hyperdx.krateo.io CRDs and leftover cdc bundles',
          '', 'Dry run: nothing was changed.',
        ]
        if (flags.json) this.printJson({ result: 'dry-run', waves, compositionDefinitions: [...obs.cds.keys()], crds: [...obs.crds.keys()] })
        else this.log(plan.join('\n'))
        return
      }
      await checkAccess(cluster, [
        { verb: 'delete', group: 'composition.krateo.io', resource: 'installers', namespace: ns },
        { verb: 'delete', group: 'core.krateo.io', resource: 'compositiondefinitions', namespace: ns },
        { verb: 'patch', group: 'apps', resource: 'deployments', namespace: ns },
        { verb: 'delete', group: 'admissionregistration.k8s.io', resource: 'mutatingwebhookconfigurations' },
        { verb: 'delete', group: 'apiextensions.k8s.io', resource: 'customresourcedefinitions' },
        ...(flags.purge ? [{ verb: 'delete', group: '', resource: 'namespaces' }] : []),
      ])
      const steps: Step[] = []
      if (!nothing) {
        if (obs.installer && existing.size) {
          steps.push({ title: 'Stage 1: pause the Installer so it cannot re-create what is drained', run: (r) => teardown.pauseInstaller(obs.installer!, obs.cds.get('installer'), r) })
        }
        if (existing.size) {
          steps.push({
            title: `Stage 1: drain ${existing.size} component Compositions, consumers first`,
            run: async (r) => {
              const remaining = new Set(existing)
              const running = new Map<string, Promise<void>>()
              while (remaining.size) {
                for (const name of deletableNow(components, remaining)) {
                  if (running.has(name)) continue
                  const c = components.find((x) => x.name === name)!
                  const obj = obs.compositions.get(name)!
                  const plural = String(obs.cds.get(name)?.status?.resource ?? '')
                  running.set(name, teardown.drainComposition(c, obj, plural, r).then(() => { remaining.delete(name); running.delete(name) }))
                }
                await Promise.race(running.values())
              }
              return `${existing.size} drained`
            },
          })
        }
        steps.push(
          { title: 'Stage 2: delete the Installer CR and the CompositionDefinitions while core-provider runs', run: (r) => teardown.deleteInstallerAndDefinitions(obs.installer, helm, r) },
          { title: `Stage 2: helm uninstall ${BOOTSTRAP_RELEASE} (hooks skipped: these steps did their work)`, run: () => teardown.uninstallRelease(helm) },
          { title: 'Stage 3: sweep what nothing can finalize any more', run: async (r) => `${(await teardown.sweep(r)).length} removed` },
        )
      }
      const progress = { live: liveProgressWanted(flags.json), stream: flags.json ? process.stderr : process.stdout }
      const guarded = steps.map((s) => ({ ...s, run: async (r: Parameters<Step['run']>[0]) => { if (interrupt.requested) throw interrupt.error(); return s.run(r) } }))
      await runSteps(guarded, progress)
      let residue = await teardown.residue()
      let purged = false
      if (flags.purge && residue.length) {
        const loss = residue.filter((r) => r.dataLoss)
        if (!flags.yes) {
          if (!process.stdin.isTTY) throw new UserError('--purge needs confirmation', ExitCode.Usage, 'pass --yes to confirm in a non-interactive run')
          const rl = createInterface({ input: process.stdin, output: process.stderr })
          const answer = await rl.question(`Delete ${residue.map((r) => r.what).join('; ')}?${loss.length ? ` DATA IN ${loss.length} PVC(S) IS LOST.` : ''} [y/N] `)
          rl.close()
          if (!/^y(es)?$/i.test(answer.trim())) throw new UserError('purge not confirmed', ExitCode.Interrupted, 'nothing more was deleted; the platform itself is uninstalled')
        }
        await runSteps([{ title: 'Purge what was kept on purpose', run: async (r) => { await teardown.purge(residue, r); return 'done' } }], progress)
        residue = await teardown.residue()
        purged = true
      }
      if (flags.json) this.printJson({ result: 'uninstalled', purged, residue })
      else {
        this.log(`\nKrateo is uninstalled from ${ns}: no Krateo object, generated CRD, webhook, cdc bundle or helm release is left.`)
        if (residue.length) this.log(`Kept on purpose (remove with --purge, or by hand):\n${residue.map((r) => `  ${r.what}\n    ${r.command}`).join('\n')}`)
      }
    } finally {
      interrupt.dispose()
    }
  }
}
