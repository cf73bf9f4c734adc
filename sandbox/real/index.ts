// The real Gen S engine in the sandbox (`sandbox up --engine real`): the process kubelet that runs its pods and
// the proxy through which kube-apiserver and the pods reach its Services.
import type { Sandbox } from '../lib/sandbox.js'
import type { Rest } from '../engine/rest.js'
import { ProcessKubelet } from './kubelet.js'
import { ServiceProxy } from './service-proxy.js'

export async function startRealEngine(sandbox: Sandbox, rest: Rest, log: (m: string) => void): Promise<void> {
  const proxyPort = sandbox.state.ports.serviceProxy
  if (!proxyPort) throw new Error('this sandbox was started without the real engine (no service proxy port)')
  const kubelet = new ProcessKubelet(
    rest,
    {
      dir: sandbox.dir,
      caFile: sandbox.caFile,
      apiServerPort: sandbox.state.ports.apiserver,
      proxy: `127.0.0.1:${proxyPort}`,
    },
    log,
  )
  const proxy = new ServiceProxy(rest, () => kubelet.readyPods(), log)
  await proxy.listen(sandbox.egressSocket, proxyPort)
  await kubelet.start()
}
