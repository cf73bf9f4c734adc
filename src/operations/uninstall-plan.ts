// The uninstall plan, as text and as data (--dry-run): the drain's waves, what each stage removes, and what is
// not the platform's (kept, at risk, or unreadable once core-provider is gone).
import { drainWaves } from '../platform/drain.js'
import type { Inventory } from './inventory.js'
import { drainable, toReCreate } from './uninstall.js'

/** The plan as text (--dry-run). */
export function uninstallPlanText(inv: Inventory): string {
  const waves = drainWaves(inv.components, drainable(inv))
  const reCreate = toReCreate(inv)
  const ns = inv.namespace
  return [
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
          "Not the platform's, and would be deleted with the platform (uninstall refuses until they are moved or gone):",
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
}

/** The plan as data (--dry-run --json). */
export function uninstallPlanDocument(inv: Inventory): Record<string, unknown> {
  return {
    result: 'dry-run',
    reCreateFirst: toReCreate(inv),
    waves: drainWaves(inv.components, drainable(inv)),
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
  }
}
