// uninstall as a list of named steps, each saying what it owns, what it deletes and what it waits on.
// Everything it deletes comes from the inventory (inventory.ts, rules in ownership.ts), recorded before the
// first delete so a re-run resumes where a failed or interrupted one stopped, the sweep included.
import { ExitCode, UserError } from '../platform/errors.js'
import { PAUSED_ANNOTATION } from '../platform/objects.js'
import { recordName } from '../cluster/teardown-record.js'
import type { Component } from '../platform/components.js'
import type { Helm } from '../cluster/helm.js'
import { type Inventory, platformPresent } from './inventory.js'
import type { Step } from '../ui/progress.js'
import type { Teardown } from './teardown.js'
import { awaitingReCreation, deletableNow, drainWaves } from '../platform/drain.js'

/** Components whose Composition exists now, or whose release's objects an earlier run left finalizing: what Stage 1 drains. */
export function drainable(inv: Inventory): Set<string> {
  return new Set(
    inv.components.filter((c) => inv.compositions.has(c.name) || inv.finishing.has(c.name)).map((c) => c.name),
  )
}

/** What the Installer must bring back before the pause (none once it is paused or being deleted). */
function toReCreate(inv: Inventory): string[] {
  const live =
    inv.installer &&
    !inv.installer.metadata.deletionTimestamp &&
    inv.installer.metadata.annotations?.[PAUSED_ANNOTATION] !== 'true'
  return live ? awaitingReCreation(inv.components, inv.stages, drainable(inv)) : []
}

export function uninstallSteps(inv: Inventory, teardown: Teardown, helm: Helm): Step[] {
  const existing = drainable(inv)
  const steps: Step[] = [
    {
      title: `Record what is the platform's (ConfigMap kube-system/${recordName(inv.namespace)}): ${inv.record.definitions.length} definitions, ${inv.record.crds.length} generated CRDs, ${inv.record.bundles.length} cdc bundles`,
      run: async () => {
        await teardown.saveRecord()
        return inv.foreignDefinitions.length
          ? `${inv.foreignDefinitions.length} CompositionDefinitions here are not the platform's and are kept`
          : 'recorded'
      },
    },
  ]
  const reCreating = toReCreate(inv)
  if (reCreating.length) {
    steps.push({
      title: `Stage 1: let the Installer re-create ${reCreating.join(', ')} first (a version move pruned ${reCreating.length > 1 ? 'them' : 'it'}; dependents still need ${reCreating.length > 1 ? 'them' : 'it'} to finalize their objects)`,
      run: (r) => teardown.letInstallerReCreate(reCreating, r, (name, obj) => inv.compositions.set(name, obj)),
    })
  }
  if (inv.installer && existing.size && !inv.installer.metadata.deletionTimestamp) {
    steps.push({
      title: 'Stage 1: pause the Installer so it cannot re-create what is drained',
      run: (r) =>
        teardown.pauseInstaller(
          inv.installer!,
          inv.definitions.find((d) => d.metadata.name === 'installer'),
          r,
        ),
    })
  }
  if (existing.size) {
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
  }
  steps.push(
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
  )
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

export function uninstallPlan(inv: Inventory): { text: string; json: Record<string, unknown> } {
  const waves = drainWaves(inv.components, drainable(inv))
  const reCreate = toReCreate(inv)
  const ns = inv.namespace
  const text = [
    `Plan: uninstall Krateo from ${ns}`,
    ...(reCreate.length
      ? [
          '',
          `Stage 1 first lets the Installer re-create ${reCreate.join(', ')} (pruned by a version move; dependents still need it to finalize their objects).`,
        ]
      : []),
    '',
    'Stage 1, ordered drain (Installer paused first; each wave after the previous one is gone):',
    ...waves.map(
      (w, i) =>
        `  wave ${i + 1}: ${w
          .map((n) =>
            inv.finishing.has(n)
              ? `${n} (Composition gone; waits for ${inv.finishing
                  .get(n)!
                  .map((m) => `${m.resource}/${m.name}`)
                  .join(', ')} to be finalized)`
              : n,
          )
          .join(', ')}`,
    ),
    '',
    `Stage 2: delete Installer ${ns}/installer and the platform's ${inv.record.definitions.length} CompositionDefinitions (${inv.record.definitions.join(', ') || 'none'}), wait for their ${inv.record.crds.length} CRDs to go; helm uninstall ${inv.record.release ?? '(no bootstrap release found)'} (hooks skipped)`,
    `Stage 3: sweep ${[inv.record.webhooks.length ? `webhook ${inv.record.webhooks.join(', ')}` : '', inv.record.policies?.length ? `admission policy ${inv.record.policies.join(', ')}` : '', inv.record.restCrds.length ? `CRDs ${inv.record.restCrds.join(', ')}` : '', `${inv.record.bundles.length} cdc bundles`, inv.record.secrets.length ? `Secret ${inv.record.secrets.join(', ')}` : ''].filter(Boolean).join(', ')}`,
    ...(inv.foreignInstances.length
      ? [
          '',
          "Not the platform's, and would be deleted with a kind the platform ships (uninstall refuses until they are gone):",
          ...inv.foreignInstances.map((f) => `  ${f}`),
        ]
      : []),
    ...(inv.unreadableAfter.length
      ? [
          '',
          "Not the platform's, kept, but unreadable once core-provider is gone (their versions convert through its webhook; uninstall asks first):",
          ...inv.unreadableAfter.map((k) => `  ${k}`),
        ]
      : []),
    ...(inv.foreignDefinitions.length || inv.foreignWebhooks.length || inv.keptRelease
      ? [
          '',
          "Not the platform's, kept:",
          ...inv.foreignDefinitions.map((d) => `  CompositionDefinition ${ns}/${d.metadata.name}`),
          ...inv.foreignWebhooks.map((w) => `  MutatingWebhookConfiguration ${w}`),
          ...(inv.keptRelease ? [`  ${inv.keptRelease}`] : []),
        ]
      : []),
    '',
    'Dry run: nothing was changed.',
  ].join('\n')
  return {
    text,
    json: {
      result: 'dry-run',
      reCreateFirst: reCreate,
      waves,
      finishing: Object.fromEntries(
        [...inv.finishing].map(([n, refs]) => [n, refs.map((m) => `${m.resource}/${m.name}`)]),
      ),
      release: inv.record.release,
      compositionDefinitions: inv.record.definitions,
      crds: inv.record.crds,
      cdcBundles: inv.record.bundles,
      webhooks: inv.record.webhooks,
      admissionPolicies: inv.record.policies ?? [],
      generatedCrds: inv.record.restCrds,
      secrets: inv.record.secrets,
      notOurs: {
        compositionDefinitions: inv.foreignDefinitions.map((d) => d.metadata.name),
        webhooks: inv.foreignWebhooks,
        release: inv.keptRelease,
        atRisk: inv.foreignInstances,
        unreadableAfter: inv.unreadableAfter,
      },
    },
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
