// The sandbox agent: a long-lived process beside the control plane that runs what a real cluster would
// have and kwok does not: a LoadBalancer controller, a volume provisioner and the Krateo engine simulator. When the
// sandbox belongs to a process (a test run) and that process dies, the agent tears the sandbox down, so
// a crashed test never leaves daemons behind.
import { writeFileSync } from 'node:fs'
import { KubeConfig } from '@kubernetes/client-node'
import { agentReadyFile, loadSandbox } from './lib/sandbox.js'
import { startLoadBalancerController } from './lib/loadbalancer.js'
import { startVolumeProvisioner } from './lib/volumes.js'
import { startEngine } from './engine/index.js'
import type { EngineContext } from './engine/context.js'

const dir = process.argv[2]
if (!dir) {
  console.error('usage: agent.ts <sandbox dir>')
  process.exit(2)
}
const log = (m: string) => console.log(`${new Date().toISOString()} ${m}`)
const sandbox = loadSandbox(dir)
const kc = new KubeConfig()
kc.loadFromFile(sandbox.kubeconfig)

let engine: EngineContext | undefined
startLoadBalancerController(kc, log, () => {
  const s = engine?.settings()
  return { delaySeconds: s?.loadBalancerDelaySeconds ?? 0, hostnameOnly: s?.loadBalancerHostnameOnly ?? false }
})
startVolumeProvisioner(kc, log)
if (sandbox.state.engine) engine = await startEngine(sandbox, log)

const ownerPid = sandbox.state.ownerPid
if (ownerPid) {
  const timer = setInterval(() => {
    try {
      process.kill(ownerPid, 0)
    } catch {
      clearInterval(timer)
      log(`owner ${ownerPid} is gone; tearing the sandbox down`)
      const current = loadSandbox(dir)
      current.state.daemons = current.state.daemons.filter((d) => d.pid !== process.pid)
      void current.stop().finally(() => process.exit(0))
    }
  }, 1000)
}
// Stopped like a pod: the engine ends the work it runs (a helm run cut midway leaves its release pending).
process.on('SIGTERM', () => void (engine?.queue.drain() ?? Promise.resolve()).finally(() => process.exit(0)))
log(`agent running for ${dir}`)
// The sandbox's start waits for this: no pod may be created before the /pods webhook is registered.
writeFileSync(agentReadyFile(dir), new Date().toISOString())
