// uninstall as a list of named steps, each saying what it owns, what it deletes and what it waits on.
// Everything it deletes comes from the inventory (inventory.ts, rules in ownership.ts), recorded before the
// first delete so a re-run resumes where a failed or interrupted one stopped, the sweep included.
import { apiFailure } from '../cluster/cluster.js'
import { deleteRecord, recordName } from '../cluster/teardown-record.js'
import { ask } from '../ui/confirm.js'
import type { Operation } from './operation.js'
import { type Residue, purge } from './residue.js'
import { ExitCode, UserError } from '../platform/errors.js'
import { PAUSED_ANNOTATION } from '../platform/objects.js'
import type { Component } from '../platform/components.js'
import type { Helm } from '../cluster/helm.js'
import { type Inventory, platformPresent } from './inventory.js'
import type { Step } from '../ui/progress.js'
import type { Teardown } from './teardown.js'
import { awaitingReCreation, deletableNow } from '../platform/drain.js'

/** Components whose Composition exists now, or whose release's objects an earlier run left finalizing: what Stage 1 drains. */
export function drainable(inv: Inventory): Set<string> {
  return new Set(
    inv.components.filter((c) => inv.compositions.has(c.name) || inv.finishing.has(c.name)).map((c) => c.name),
  )
}

/** What the Installer must bring back before the pause (none once it is paused or being deleted). */
export function toReCreate(inv: Inventory): string[] {
  const live =
    inv.installer &&
    !inv.installer.metadata.deletionTimestamp &&
    inv.installer.metadata.annotations?.[PAUSED_ANNOTATION] !== 'true'
  return live ? awaitingReCreation(inv.components, inv.stages, drainable(inv)) : []
}

export function uninstallSteps(inv: Inventory, teardown: Teardown, helm: Helm): Step[] {
  return [
    {
      title: `Record what is the platform's (ConfigMap kube-system/${recordName(inv.namespace)}): ${inv.record.definitions.length} definitions, ${inv.record.crds.length} generated CRDs, ${inv.record.bundles.length} cdc bundles`,
      run: async () => {
        await teardown.saveRecord()
        return inv.foreignDefinitions.length
          ? `${inv.foreignDefinitions.length} CompositionDefinitions here are not the platform's and are kept`
          : 'recorded'
      },
    },
    ...drainSteps(inv, teardown),
    {
      title:
        "Stage 2: delete the Installer CR and the platform's CompositionDefinitions while core-provider runs; wait for their CRDs",
      run: (r) => teardown.deleteInstallerAndDefinitions(inv.installer, helm, r),
    },
    {
      title: `Stage 2: helm uninstall ${inv.record.release ?? 'the bootstrap release'} (hooks skipped: these steps did their work)`,
      run: () => teardown.uninstallRelease(helm),
    },
    {
      title:
        "Stage 3: sweep what nothing can finalize any more (the platform's webhook or admission policy, generated CRDs, cdc bundles, registry Secret)",
      run: async (r) => `${(await teardown.sweep(r)).length} removed`,
    },
  ]
}

/** Stage 1: what a version move pruned re-created first, the Installer paused, the Compositions drained. */
function drainSteps(inv: Inventory, teardown: Teardown): Step[] {
  const existing = drainable(inv)
  const reCreating = toReCreate(inv)
  const steps: Step[] = []
  if (reCreating.length) {
    const them = reCreating.length > 1 ? 'them' : 'it'
    steps.push({
      title: `Stage 1: let the Installer re-create ${reCreating.join(', ')} first (a version move pruned ${them}; dependents still need ${them} to finalize their objects)`,
      run: (r) => teardown.letInstallerReCreate(reCreating, r, (name, obj) => inv.compositions.set(name, obj)),
    })
  }
  if (!existing.size) return steps
  if (inv.installer && !inv.installer.metadata.deletionTimestamp) {
    const installerCD = inv.definitions.find((d) => d.metadata.name === 'installer')
    steps.push({
      title: 'Stage 1: pause the Installer so it cannot re-create what is drained',
      run: (r) => teardown.pauseInstaller(inv.installer!, installerCD, r),
    })
  }
  steps.push({
    title: `Stage 1: drain the platform's ${existing.size + reCreating.length} component Compositions, consumers first`,
    run: async (r) => {
      // Read now: what the Installer re-created above is drained too.
      const present = drainable(inv)
      await drainInOrder(inv.components, present, async (c) => {
        const obj = inv.compositions.get(c.name)
        if (!obj) return teardown.finishRelease(c, inv.finishing.get(c.name) ?? [], r)
        const plural = String(inv.definitions.find((d) => d.metadata.name === c.name)?.status?.resource ?? '')
        await teardown.drainComposition(c, obj, plural, r)
      })
      return `${present.size} drained`
    },
  })
  return steps
}

/**
 * Runs drain(c) for every existing component, each as soon as none of its dependents is left; independent branches
 * in parallel. At the deadline every running drain ends within a second; the error reported is then the most
 * actionable one (an object stuck on a finalizer, exit 7, over another merely still moving, exit 6).
 */
export async function drainInOrder(
  components: Component[],
  existing: Set<string>,
  drain: (c: Component) => Promise<void>,
): Promise<void> {
  const remaining = new Set(existing)
  const running = new Map<string, Promise<void>>()
  const start = (name: string) =>
    running.set(
      name,
      drain(components.find((x) => x.name === name)!).then(() => {
        remaining.delete(name)
        running.delete(name)
      }),
    )
  while (remaining.size) {
    for (const name of deletableNow(components, remaining)) if (!running.has(name)) start(name)
    // A dependency cycle in a hand-edited component list leaves nothing deletable: drain the rest together.
    if (!running.size) for (const name of remaining) start(name)
    try {
      await Promise.race(running.values())
    } catch (err) {
      if (!(err instanceof UserError && err.exitCode === ExitCode.Timeout)) throw err
      const settled = await Promise.allSettled(running.values())
      const errors = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []))
      throw errors.find((e) => e instanceof UserError && e.exitCode === ExitCode.Stuck) ?? err
    }
  }
}

const RE_PLAN = 'nothing was changed; run uninstall --dry-run to see the plan as it is now, then the same command again'

/**
 * What changed between the inventory a user confirmed (read before the lock and the question) and the one read
 * under the lock, that the confirmation did not cover: then nothing is done (review N5). The plan itself is
 * always the one read under the lock; this only refuses what the user was not shown.
 */
export function changedSinceConfirmed(
  confirmed: Inventory,
  now: Inventory,
  asked: boolean,
): { why: string; exit: ExitCode; hint: string } | null {
  if (platformPresent(now) && now.foreignInstances.length) {
    const n = now.foreignInstances.length
    return {
      why: `uninstalling would delete ${n} object${n > 1 ? 's' : ''} that ${n > 1 ? 'are' : 'is'} not the platform's: ${now.foreignInstances.slice(0, 5).join('; ')}${n > 5 ? '; ...' : ''}`,
      exit: ExitCode.Stuck,
      hint: now.foreignInstances.some((f) => f.startsWith('every object of '))
        ? 'nothing was changed; a kind that cannot be listed usually needs core-provider running (its conversion webhook): start it, or find why the list fails, then re-run'
        : 'nothing was changed; move or delete them yourself first (uninstall --dry-run lists them all), then re-run',
    }
  }
  const release = (i: Inventory) => i.release?.name ?? i.record.release ?? null
  if (release(confirmed) && release(now) && release(confirmed) !== release(now))
    return {
      why: `the bootstrap release is now ${release(now)}, not ${release(confirmed)} as shown`,
      exit: ExitCode.Interrupted,
      hint: RE_PLAN,
    }
  const unreadable = now.unreadableAfter.filter((k) => !confirmed.unreadableAfter.includes(k))
  if (asked && unreadable.length)
    return {
      why: `more kinds not the platform's would become unreadable than were shown: ${unreadable.join('; ')}`,
      exit: ExitCode.Interrupted,
      hint: RE_PLAN,
    }
  return null
}

/**
 * --purge, after the platform is gone: what was kept on purpose and is provably the platform's, asked for (unless
 * --yes) and judged again after the question (it may have waited): only what was shown and is unchanged goes.
 * Returns what is left.
 */
export async function purgeKept(
  op: Operation,
  teardown: Teardown,
  left: Residue,
  readResidue: () => Promise<Residue>,
  yes: boolean,
): Promise<Residue> {
  const { cluster, namespace } = teardown
  const loss = left.items.filter((r) => r.dataLoss)
  const question = `Delete ${left.items.map((r) => r.what).join('; ')}?${loss.length ? ` DATA IN ${loss.length} PVC(S) IS LOST.` : ''}`
  if (!yes && !(await ask(question)))
    throw new UserError(
      'purge not confirmed',
      ExitCode.Interrupted,
      'nothing more was deleted; the platform itself is uninstalled',
    )
  await op.steps([
    {
      title: "Purge what was kept on purpose (only what was the platform's)",
      run: async (r) => {
        const confirmed = new Set(left.items.map((i) => `${i.kind}/${i.name}/${i.uid ?? ''}`))
        const now = yes ? left : await readResidue()
        for (const k of now.kept) if (!left.kept.includes(k)) r.line(k)
        const items = now.items.filter((i) => confirmed.has(`${i.kind}/${i.name}/${i.uid ?? ''}`))
        if (items.some((i) => i.kind === 'namespace' && i.name === namespace)) op.lockGoesWithNamespace()
        const namespaceGone = (name: string) =>
          teardown.waitObjectGone(
            '/api/v1/namespaces',
            name,
            `namespace ${name} to go`,
            r,
            () => `namespace ${name} is Terminating`,
          )
        await purge(cluster, items, (m) => r.line(m), namespaceGone)
        return 'done'
      },
    },
  ])
  const after = await readResidue()
  // The namespace is gone: nothing is left that the record could serve.
  if (
    !after.items.some((i) => i.kind === 'namespace') &&
    !after.kept.some((k) => k.startsWith(`Namespace ${namespace}:`))
  )
    await deleteRecord(cluster, namespace).catch((err) => {
      throw apiFailure(err, cluster, 'delete the teardown record')
    })
  return after
}
