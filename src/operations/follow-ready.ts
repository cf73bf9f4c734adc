// Following the self-reconcile until the platform runs (install and upgrade): one watch of the platform, the
// nudges a component waiting for a render gets, the heals (heal.ts), and what a timeout names.
import type { RunContext } from './operation.js'
import type { Step } from '../ui/progress.js'
import { type Cluster, apiFailure } from '../cluster/cluster.js'
import { ExitCode, UserError } from '../platform/errors.js'
import { observe } from '../cluster/observe.js'
import { type PlatformState, platformState, phaseText } from '../platform/state.js'
import { type Observed, isReady, PAUSED_ANNOTATION } from '../platform/objects.js'
import { LEAVING_STAGES, STAGE_TEXT } from '../platform/component-state.js'
import { PlatformWatch } from './follow.js'
import { Nudger } from './nudger.js'
import { type StepReport } from '../ui/progress.js'
import { clearNudge } from '../cluster/kube-write.js'
import { DISCOVERY_REFRESH_GAP_MS, healStuck, refreshMissedKinds } from './heal.js'
import { renderStatus, table } from '../ui/output.js'
import type { Interrupt } from './interrupt.js'

export async function waitUntil(
  pw: PlatformWatch,
  interrupt: Interrupt,
  deadline: number,
  ready: (o: ReturnType<PlatformWatch['snapshot']>) => boolean,
  why: (o: ReturnType<PlatformWatch['snapshot']>) => string,
  report: StepReport,
  onTick?: () => Promise<unknown>,
): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let done = false
    // Run from a timer and from watch events: a throw here must end this wait, not the process (no cleanup ran).
    const check = () => {
      try {
        checkNow()
      } catch (err) {
        done = true
        clearInterval(timer)
        reject(err)
      }
    }
    const checkNow = () => {
      if (done || !pw.primed()) return
      const o = pw.snapshot()
      if (ready(o)) {
        done = true
        clearInterval(timer)
        resolve()
        return
      }
      report.line(why(o))
      if (interrupt.requested) {
        done = true
        clearInterval(timer)
        reject(interrupt.error())
      } else if (Date.now() > deadline) {
        done = true
        clearInterval(timer)
        reject(new UserError(`timed out: ${why(o)}`, ExitCode.Timeout, 're-run to resume, or raise --timeout'))
      } else void onTick?.().catch(() => undefined)
    }
    pw.onChange(check)
    const timer = setInterval(check, 1000)
    check()
  })
}

export interface FollowResult {
  state: PlatformState
  nudges: number
  healed: number
}

/**
 * Follows the self-reconcile until every enabled component is Ready and every disabled one is drained.
 * `applied` holds off judging until the watched Installer CR shows the change just written to it (a watch
 * lags a write); `pending` says what else the caller waits for (null when nothing).
 */
export async function followToReady(
  cluster: Cluster,
  pw: PlatformWatch,
  opts: { namespace: string; accelerate: boolean },
  interrupt: Interrupt,
  report: StepReport,
  deadline: number,
  applied: (o: Observed) => boolean = () => true,
  pending: (o: Observed) => string | null = () => null,
): Promise<FollowResult> {
  const follow = new Follow(cluster, pw, opts.accelerate ? new Nudger(cluster, report) : null, report)
  let busy = false
  return await new Promise<FollowResult>((resolve, reject) => {
    let finished = false
    const finish = (fn: () => void) => {
      if (finished) return
      finished = true
      clearInterval(timer)
      fn()
    }
    const tick = async () => {
      if (finished || busy || !pw.primed()) return
      busy = true
      try {
        const o = pw.snapshot()
        if (!applied(o)) {
          report.line('waiting for the watch to show the patched Installer CR')
          if (Date.now() > deadline)
            finish(() =>
              reject(
                new UserError(
                  'timed out waiting to observe the patched Installer CR',
                  ExitCode.Timeout,
                  're-run the same command to resume',
                ),
              ),
            )
          return
        }
        const result = await follow.step(o, pending)
        if (result) finish(() => resolve(result))
        else if (interrupt.requested) finish(() => reject(interrupt.error()))
        else if (Date.now() > deadline) finish(() => reject(new TimeoutWithState(platformState(o))))
      } catch (err) {
        const failure =
          err instanceof UserError || err instanceof TypeError
            ? err
            : apiFailure(err, cluster, 'follow the installation')
        finish(() => reject(failure))
      } finally {
        busy = false
      }
    }
    pw.onChange(() => void tick())
    const timer = setInterval(() => void tick(), 1000)
    void tick()
  })
}

/** One follow of the self-reconcile: what it has reported, since when each component is where it is. */
class Follow {
  private since = new Map<string, { stage: string; at: number }>()
  private reported = new Set<string>()
  private healed = 0
  /** When the last "unreachable" line was said (0: the server answers). */
  private outageSaid = 0
  /** When a kind chart-inspector missed was last looked into (refreshMissedKinds). */
  private discoveryRefreshed = 0

  constructor(
    private cluster: Cluster,
    private pw: PlatformWatch,
    private nudger: Nudger | null,
    private report: StepReport,
  ) {}

  /** Reports what changed; the result once the platform runs and nothing else is pending. */
  async step(o: Observed, pending: (o: Observed) => string | null): Promise<FollowResult | null> {
    const now = Date.now()
    // A server that cannot be reached (a control-plane restart) is waited for: the view is stale, nothing is judged.
    const down = this.pw.unreachableFor(now)
    if (down > 0) {
      if (now - this.outageSaid >= 5000) {
        this.outageSaid = now
        this.report.line(`API server unreachable for ${Math.round(down / 1000)} s, retrying`)
      }
      return null
    }
    if (this.outageSaid) {
      this.outageSaid = 0
      this.report.line('the API server answers again')
    }
    const state = platformState(o)
    this.reportChanges(state, now)
    this.report.title(
      `Follow the self-reconcile: ${phaseText(state)}${o.installer ? '' : ' (waiting for the Installer CR)'}`,
    )
    this.report.block(progressBlock(state, this.since, now))
    const settled = !state.components.some((c) => LEAVING_STAGES.has(c.stage))
    if (o.installer && state.total > 0 && state.ready === state.total && settled && isReady(o.installer)) {
      const more = pending(o)
      if (!more) {
        const nudges = this.nudger?.nudges ?? 0
        // A nudge leaves krateo.io/paused: "false" behind: take it away, so no trace of ours stays.
        if (nudges && o.installer.metadata.annotations?.[PAUSED_ANNOTATION] === 'false')
          await clearNudge(this.cluster, o.installer)
        return { state, nudges, healed: this.healed }
      }
      this.report.line(more)
    }
    if (await healStuck(this.cluster, this.pw, this.report)) this.healed++
    if (
      now - this.discoveryRefreshed >= DISCOVERY_REFRESH_GAP_MS &&
      (await refreshMissedKinds(this.cluster, o, this.report))
    )
      this.discoveryRefreshed = now
    if (this.nudger && o.installer) await this.nudger.consider(o, o.installer, state, this.since, now)
    return null
  }

  /** Each problem once, when it appears (a read that fails, a component in error), and each component's moves. */
  private reportChanges(state: PlatformState, now: number): void {
    for (const p of state.problems)
      if (!this.reported.has(p)) {
        this.reported.add(p)
        this.report.line(`problem: ${p}`)
      }
    for (const c of state.components) {
      const prev = this.since.get(c.name)
      if (prev && prev.stage === c.stage + c.detail) continue
      this.since.set(c.name, { stage: c.stage + c.detail, at: now })
      if (prev || c.stage !== 'disabled')
        this.report.line(
          `${c.name}: ${stageText(c)}${c.stage !== 'ready' && c.detail && c.stage !== 'waiting-deps' ? ` (${c.detail})` : ''}`,
        )
    }
  }
}

const stageText = (s: PlatformState['components'][number]) =>
  s.stage === 'waiting-deps' ? `waiting for ${s.waitingFor.join(', ')}` : STAGE_TEXT[s.stage]

function progressBlock(state: PlatformState, since: Map<string, { at: number }>, now: number): string {
  const rows = state.components
    .filter((c) => c.enabled || c.stage !== 'disabled')
    .map((c) => {
      const t = Math.round((now - (since.get(c.name)?.at ?? now)) / 1000)
      return [
        c.stage === 'ready' ? '✔' : c.stage === 'error' || c.stage === 'stuck' ? '✖' : '…',
        c.name,
        stageText(c),
        c.stage === 'ready' ? '' : `${t}s`,
        c.stage === 'ready' || c.stage === 'waiting-deps' ? '' : c.detail.slice(0, 80),
      ]
    })
  const disabled = state.components.filter((c) => !c.enabled && c.stage === 'disabled').map((c) => c.name)
  return table(rows) + (disabled.length ? `\ndisabled: ${disabled.join(', ')}` : '')
}

export class TimeoutWithState extends UserError {
  constructor(readonly state: PlatformState) {
    const notReady = state.components.filter((c) => c.enabled && c.stage !== 'ready')
    super(
      `timed out with ${state.ready}/${state.total} components Ready; not Ready: ${notReady.map((c) => `${c.name} (${c.stage === 'waiting-deps' ? `waiting for ${c.waitingFor.join(', ')}` : c.detail || STAGE_TEXT[c.stage]})`).join('; ')}${state.problems.length ? `; problems: ${state.problems.slice(0, 3).join('; ')}` : ''}`,
      ExitCode.Timeout,
      're-run the same command to keep waiting (it resumes), or see krateo-installer status',
    )
  }
}

export async function currentState(cluster: Cluster, namespace: string): Promise<PlatformState> {
  return platformState(await observe(cluster, namespace))
}

export function summary(state: PlatformState, elapsedMs: number): string {
  return `Krateo is ${state.phase === 'Ready' ? 'Ready' : phaseText(state)} in ${state.namespace} (${state.ready}/${state.total} components, ${(elapsedMs / 1000).toFixed(0)}s)\n\n${renderStatus(state)}`
}

/** The last step of install and upgrade: following the self-reconcile until the platform runs. */
export function followStep(
  cluster: Cluster,
  run: RunContext,
  opts: { namespace: string; accelerate: boolean },
  applied?: (o: Observed) => boolean,
  pending?: (o: Observed) => string | null,
): Step {
  return {
    title: 'Follow the self-reconcile',
    run: async (r) => {
      const res = await followToReady(
        cluster,
        run.platformWatch(),
        opts,
        run.interrupt,
        r,
        run.deadline,
        applied,
        pending,
      )
      return `${res.state.ready}/${res.state.total} Ready${res.nudges ? `, ${res.nudges} nudges saved resync waits` : ''}`
    },
  }
}
