// --accelerate: Pass B renders one dependency layer per reconcile of the Installer (every cdc resync, 3 min on
// Gen S). A change of krateo.io/paused is an event the cdc watches (contract section 3): it observes, and so
// renders the next layer, now. Never a restart: that would cut a render in flight. At most once per newly
// unlocked layer, and never while the installer's release is pending (helm in flight).
import type { Cluster } from '../cluster/cluster.js'
import { installerReleasePending, nudge } from '../cluster/kube-write.js'
import { type InstallerSpec, dependentsOf, parseComponents } from '../platform/components.js'
import { type KObj } from '../platform/kobj.js'
import { type Observed, DISCOVERY_DELAY, PAUSED_ANNOTATION, conditionOf } from '../platform/objects.js'
import { type PlatformState } from '../platform/state.js'
import type { StepReport } from '../ui/progress.js'

/**
 * A stage must hold this long before a nudge (a burst of events settles), and nudges are this far apart: the
 * guard against a second render is the release's pending status, not a wait (every wait here is added to
 * every dependency layer of the install).
 */
const NUDGE_SETTLE_MS = 300
const NUDGE_GAP_MS = 1000
/** helm's words when a kind whose CRD was just established is not in discovery yet (a render to retry). */
const DISCOVERY_LAG = new RegExp(`${DISCOVERY_DELAY}|no matches for kind|ensure CRDs are installed first`, 'i')

export class Nudger {
  nudges = 0
  private lastNudge = 0
  private nudgedFor = new Set<string>()
  private retryMs = 2000

  constructor(
    private cluster: Cluster,
    private report: StepReport,
  ) {}

  /** Nudges the installer's cdc when a component waits for a render it has not been nudged for yet. */
  async consider(
    o: Observed,
    installer: KObj,
    state: PlatformState,
    since: Map<string, { at: number }>,
    now: number,
  ): Promise<void> {
    const waitingRender = this.waitingRender(o, installer, state, since, now)
    this.retryAfterDiscoveryLag(installer, waitingRender, now)
    const fresh = waitingRender.filter((k) => !this.nudgedFor.has(k))
    if (
      !fresh.length ||
      now - this.lastNudge <= NUDGE_GAP_MS ||
      installer.metadata.annotations?.[PAUSED_ANNOTATION] === 'true'
    )
      return
    this.lastNudge = now
    if (await installerReleasePending(this.cluster, installer)) {
      this.report.line("the installer's release is being rendered (helm pending): no nudge until it settles")
      return
    }
    for (const k of waitingRender) this.nudgedFor.add(k)
    this.nudges++
    await nudge(this.cluster, installer)
    this.report.line(
      `nudged the installer's cdc (krateo.io/paused, a watched annotation) so it renders ${fresh.map((k) => k.split(':')[0]).join(', ')} now, not at its next resync`,
    )
  }

  /**
   * Components whose next step is the Installer's next render, settled for a moment: those awaiting a render
   * (the consumer's wiring counts too: a LoadBalancer IP that came after the last render is written at the
   * next), and in a feature-off drain a draining component whose dependents are gone.
   */
  private waitingRender(
    o: Observed,
    installer: KObj,
    state: PlatformState,
    since: Map<string, { at: number }>,
    now: number,
  ): string[] {
    const components = parseComponents((installer.spec ?? {}) as InstallerSpec)
    const drainable = (name: string) => !dependentsOf(name, components).some((d) => o.compositions.has(d.name))
    return state.components
      .filter(
        (c) =>
          (c.awaitsRender || (c.stage === 'draining' && drainable(c.name))) &&
          now - (since.get(c.name)?.at ?? now) > NUDGE_SETTLE_MS,
      )
      .map((c) => `${c.name}:${c.stage}`)
  }

  /**
   * A render that failed because a kind just served is not in the API's discovery yet is retried by the cdc
   * only at its next resync: nudge again, backing off, until a render goes through.
   */
  private retryAfterDiscoveryLag(installer: KObj, waitingRender: string[], now: number): void {
    const synced = conditionOf(installer, 'Synced')
    if (
      synced?.status === 'False' &&
      DISCOVERY_LAG.test(synced.message ?? '') &&
      waitingRender.length &&
      now - this.lastNudge > this.retryMs
    ) {
      this.report.line(
        `the installer's last render failed while a new kind was not yet discoverable: nudging again (in ${this.retryMs / 1000}s)`,
      )
      this.nudgedFor.clear()
      this.retryMs = Math.min(30_000, this.retryMs * 2)
    }
  }
}
