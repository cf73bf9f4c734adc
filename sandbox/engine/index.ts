// The Krateo engine simulator: core-provider, one cdc per generated CRD version, the dependents'
// controllers and the core-provider webhook, all working only through the API like the real ones.
import { join } from 'node:path'
import { mkdirSync } from 'node:fs'
import { issueCert } from '../lib/pki.js'
import type { Sandbox } from '../lib/sandbox.js'
import { Rest } from './rest.js'
import { HelmRunner } from './helm.js'
import { EngineContext, type Log } from './context.js'
import { CoreProvider } from './core-provider.js'
import { CdcManager } from './cdc.js'
import { DependentControllers } from './dependents.js'
import { WebhookServer } from './webhook.js'
import { base64File } from '../lib/pki.js'

export async function startEngine(sandbox: Sandbox, log: Log): Promise<void> {
  const pki = join(sandbox.dir, 'pki')
  const rest = new Rest({ server: sandbox.apiServerUrl, ca: sandbox.caFile, cert: join(pki, 'admin.crt'), key: join(pki, 'admin.key') })
  const helmHome = join(sandbox.dir, 'engine-helm')
  mkdirSync(helmHome, { recursive: true })
  const helm = new HelmRunner(sandbox.helm, helmHome, sandbox.kubeconfig, [sandbox.registry])
  const ctx = new EngineContext(rest, helm, log)
  const cert = issueCert(pki, 'core-provider-webhook', { cert: sandbox.caFile, key: join(pki, 'ca.key') }, { commonName: 'core-provider-webhook', ipSANs: ['127.0.0.1'] })
  const webhook = new WebhookServer(cert.cert, cert.key, () => !!ctx.coreProvider())
  await webhook.listen()
  ctx.start()
  new CoreProvider(ctx, webhook, base64File(sandbox.caFile)).start()
  new CdcManager(ctx).start()
  new DependentControllers(ctx).start()
  log(`engine simulator running (webhook ${webhook.url})`)
}
