// The Krateo engine simulator: core-provider, one cdc per generated CRD version, the dependents'
// controllers and the core-provider webhook, all working only through the API like the real ones.
import { join } from 'node:path'
import { mkdirSync, writeFileSync } from 'node:fs'
import { issueCert } from '../lib/pki.js'
import { engineActivityFile, type Sandbox } from '../lib/sandbox.js'
import { Rest } from './rest.js'
import { HelmRunner } from './helm.js'
import { EngineContext, type Log } from './context.js'
import { CoreProvider } from './core-provider.js'
import { CdcManager } from './cdc.js'
import { DependentControllers } from './dependents.js'
import { WebhookServer, knobFor, type PodFault } from './webhook.js'
import { startKubelet } from './kubelet.js'
import { HookRunner } from './hooks.js'
import type { EffectiveSettings } from './context.js'
import { base64File } from '../lib/pki.js'
import { processImage } from '../real/images.js'
import { PROCESS_NODE } from '../real/kubelet.js'
import { startRealEngine } from '../real/index.js'

export async function startEngine(sandbox: Sandbox, log: Log): Promise<EngineContext> {
  const pki = join(sandbox.dir, 'pki')
  const rest = new Rest({
    server: sandbox.apiServerUrl,
    ca: sandbox.caFile,
    cert: join(pki, 'admin.crt'),
    key: join(pki, 'admin.key'),
  })
  const helmHome = join(sandbox.dir, 'engine-helm')
  mkdirSync(helmHome, { recursive: true })
  const helm = new HelmRunner(sandbox.helm, helmHome, sandbox.kubeconfig, [
    sandbox.registry,
    ...(sandbox.privateRegistry ? [sandbox.privateRegistry] : []),
  ])
  const ctx = new EngineContext(rest, helm, log)
  const cert = issueCert(
    pki,
    'core-provider-webhook',
    { cert: sandbox.caFile, key: join(pki, 'ca.key') },
    { commonName: 'core-provider-webhook', ipSANs: ['127.0.0.1'] },
  )
  const real = sandbox.engineKind === 'real'
  const webhook = new WebhookServer(cert.cert, cert.key, {
    coreProviderAlive: () => !!ctx.coreProvider(),
    stampOn: () => ctx.profile().stampOn,
    podFault: (release) => podFault(ctx.settings(), release),
    nodeFor: real ? (images) => (images.some((i) => processImage(i)) ? PROCESS_NODE : null) : undefined,
  })
  await webhook.listen(sandbox.state.ports.engineWebhook)
  ctx.start()
  await registerPodWebhook(rest, webhook.url, base64File(sandbox.caFile))
  if (real) {
    // The real core-provider, cdcs and chart-inspector run as processes; the simulator keeps what is not
    // theirs: the dependents' finalizers, the chart's hook Jobs and the fault knobs of kwok's pods.
    await startRealEngine(sandbox, rest, log)
  } else {
    new CoreProvider(ctx, webhook, base64File(sandbox.caFile)).start()
    const cdcs = new CdcManager(ctx)
    cdcs.start()
    reportQuiet(sandbox, () => cdcs.settled && !ctx.queue.busy)
  }
  new DependentControllers(ctx).start()
  startKubelet(ctx)
  new HookRunner(ctx).start()
  log(
    real
      ? 'real engine (core-provider 0.26.1, cdc 0.20.2, chart-inspector 0.2.0) running as processes'
      : `engine simulator running as ${ctx.profile().describe} (webhook ${webhook.url})`,
  )
  return ctx
}

/**
 * Since when the simulator has had nothing to do (every cdc listed, no work queued), in engineActivityFile: after a
 * restart a test waits for the start-up round each controller runs (Sandbox.waitEngineQuiet).
 */
function reportQuiet(sandbox: Sandbox, quiet: () => boolean): void {
  let since: number | null = null
  const file = engineActivityFile(sandbox.dir)
  setInterval(() => {
    const now = quiet()
    if (now === (since !== null)) return
    since = now ? Date.now() : null
    writeFileSync(file, JSON.stringify({ quietSince: since }))
  }, 250)
}

/** Pod-level fault knobs: a slow start (image pull) and a crash loop, per component. */
function podFault(settings: EffectiveSettings, release: string): PodFault | null {
  const delay = knobFor(settings.readinessDelaySeconds, release)
  const crash = knobFor(settings.neverReady, release)
  if (!delay && !crash) return null
  return {
    ...(delay ? { readyAt: new Date(Date.now() + delay * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z') } : {}),
    ...(crash ? { crashLoop: crash } : {}),
  }
}

/**
 * The sandbox's kubelet stand-in sees every new pod (failurePolicy Ignore: it never blocks one). Replaced at each
 * start: a restarted agent listens on another port.
 */
async function registerPodWebhook(rest: Rest, url: string, caBundle: string): Promise<void> {
  await rest.createOrReplace('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: 'krateo-sandbox-kubelet' },
    webhooks: [
      {
        name: 'pods.sandbox.krateo.io',
        clientConfig: { url: `${url}/pods`, caBundle },
        rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
        failurePolicy: 'Ignore',
        sideEffects: 'None',
        admissionReviewVersions: ['v1'],
        timeoutSeconds: 2,
      },
    ],
  })
}
