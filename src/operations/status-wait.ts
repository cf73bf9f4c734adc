// status --wait: follow the platform from watches until it is Ready or the time is up. A spinner (ora) on a
// terminal; a timestamped line per change of phase otherwise (CI logs).
import ora from 'ora'
import type { Cluster } from '../cluster/cluster.js'
import { PlatformWatch } from './follow.js'
import { stamp } from '../ui/output.js'
import { type PlatformState, phaseText, platformState } from '../platform/state.js'

export async function waitReady(
  cluster: Cluster,
  namespace: string,
  initial: PlatformState,
  timeoutMs: number,
  spinner: boolean,
): Promise<PlatformState> {
  const watch = new PlatformWatch(cluster, namespace).start()
  const spin = spinner ? ora({ text: phaseText(initial), stream: process.stderr }).start() : null
  let last = phaseText(initial)
  if (!spin) process.stderr.write(stamp(`waiting for Ready: ${last}`) + '\n')
  try {
    return await new Promise<PlatformState>((resolve) => {
      let state = initial
      const finish = () => {
        clearTimeout(timer)
        resolve(state)
      }
      const timer = setTimeout(finish, timeoutMs)
      watch.onChange(() => {
        if (!watch.primed()) return
        state = platformState(watch.snapshot())
        const text = phaseText(state)
        if (text !== last) {
          last = text
          if (spin) spin.text = text
          else process.stderr.write(stamp(text) + '\n')
        }
        if (state.phase === 'Ready') finish()
      })
    })
  } finally {
    watch.stop()
    spin?.stop()
  }
}
