// The sandbox's kubelet stand-in for the crash-loop knob: kwok plays a marked pod's crash loop (see
// webhook.ts, /pods); once the knob no longer names its component, the next restart succeeds, as a container
// does once what it crashed on is back. Not Krateo's: what a node does.
import type { EngineContext } from './context.js'
import { POD_CRASH_LOOP, knobFor } from './webhook.js'
import type { KObject } from './rest.js'

export function startKubelet(ctx: EngineContext): void {
  const heal = async () => {
    const knobs = ctx.settings().neverReady
    const pods = await ctx.rest.list('/api/v1/pods')
    for (const pod of pods as KObject[]) {
      const release = pod.metadata.labels?.['app.kubernetes.io/instance']
      if (
        !pod.metadata.annotations?.[POD_CRASH_LOOP] ||
        pod.metadata.deletionTimestamp ||
        (release && knobFor(knobs, release))
      )
        continue
      const path = `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}`
      await ctx.rest.mergePatch(path, { metadata: { annotations: { [POD_CRASH_LOOP]: null } } })
      // Back to Pending: kwok's pod-ready stage starts it as any new pod.
      await ctx.rest.mergePatch(`${path}/status`, {
        status: {
          phase: 'Pending',
          conditions: [{ type: 'Ready', status: 'False', reason: 'ContainersNotReady' }],
          containerStatuses: null,
        },
      })
      ctx.log(`kubelet: ${pod.metadata.namespace}/${pod.metadata.name} restarts cleanly (crash-loop knob gone)`)
    }
  }
  ctx.every(
    () => 2,
    () => void heal().catch((err) => ctx.log(`kubelet: ${(err as Error).message}`)),
  )
}
