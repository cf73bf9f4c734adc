// Writes to Compositions while a Gen S core-provider may be down: its fail-closed webhook then refuses every
// one of them. Said as such; with --force (confirmed) this platform's own webhook, and only it, is removed.
import { AdmissionregistrationV1Api } from '@kubernetes/client-node'
import { apiFailure, isNotFound } from '../../cluster/cluster.js'
import { type WebhookLike, isCoreProviderWebhook, recordedVerdict } from '../../platform/ownership.js'
import { refusingWebhook } from '../../platform/drain.js'
import { ExitCode, UserError } from '../../platform/errors.js'
import type { TeardownRun } from './run.js'

/** A write to a Composition; a refusal by core-provider's webhook is named, and with --force cleared once. */
export async function compositionWrite<T>(t: TeardownRun, doing: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    const webhook = refusingWebhook(err)
    if (!webhook) throw apiFailure(err, t.cluster, doing)
    await removeRefusingWebhook(t, doing, webhook)
    try {
      return await fn()
    } catch (again) {
      throw apiFailure(again, t.cluster, doing)
    }
  }
}

/** Throws unless this platform's webhook refused and --force removed it (confirmed). */
export async function removeRefusingWebhook(t: TeardownRun, doing: string, webhook: string): Promise<void> {
  const mwc = await ourWebhookRefusing(t)
  const who = t.inventory?.coreProviders.length
    ? `Deployment ${t.inventory.coreProviders.join(', ')} in ${t.namespace}`
    : `core-provider in ${t.namespace}`
  if (!mwc || !t.force) {
    throw new UserError(
      `cannot ${doing}: core-provider is not running, and its webhook ${mwc?.name ?? webhook} refuses every write to Compositions`,
      ExitCode.Stuck,
      mwc
        ? `start ${who} again (kubectl -n ${t.namespace} get deploy), or re-run with --force --yes to remove this platform's webhook ${mwc.name} first`
        : `start ${who} again; that webhook is not this platform's, so --force leaves it alone`,
    )
  }
  if (
    !(await t.confirm(
      `remove MutatingWebhookConfiguration ${mwc.name} (this platform's core-provider webhook, its core-provider is down) so writes to Compositions work again?`,
    ))
  ) {
    throw new UserError(
      `the webhook ${mwc.name} was kept`,
      ExitCode.Stuck,
      `start ${who} again, then re-run ${t.command}`,
    )
  }
  const admission = t.cluster.kc.makeApiClient(AdmissionregistrationV1Api)
  await t.api(`delete MutatingWebhookConfiguration ${mwc.name}`, () =>
    admission
      .deleteMutatingWebhookConfiguration({ name: mwc.name, body: { preconditions: { uid: mwc.uid } } })
      .catch((e) => {
        if (!isNotFound(e)) throw e
      }),
  )
  t.forced.push(`MutatingWebhookConfiguration/${mwc.name} (core-provider was down)`)
}

/** Our own core-provider webhook (the recorded object, or proved ours now), when our core-provider cannot answer it. */
export async function ourWebhookRefusing(t: TeardownRun): Promise<{ name: string; uid: string } | null> {
  const admission = t.cluster.kc.makeApiClient(AdmissionregistrationV1Api)
  for (const name of t.record.webhooks) {
    const mwc = (await admission.readMutatingWebhookConfiguration({ name }).catch(() => null)) as WebhookLike | null
    if (!mwc || !isCoreProviderWebhook(mwc)) continue
    const verdict = recordedVerdict(mwc, t.recordedUid('MutatingWebhookConfiguration', name), t.provedWebhook(mwc))
    if (verdict.act && !(await t.coreProviderRunning())) return { name, uid: verdict.uid }
  }
  return null
}
