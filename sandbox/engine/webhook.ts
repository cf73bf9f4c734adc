// Webhooks really served over HTTPS on loopback, one path each:
// - /mutate: core-provider's mutating webhook (Gen S). It stamps krateo.io/composition-version on the writes
//   the generation's profile names while core-provider runs; while core-provider is down it fails, and with
//   failurePolicy Fail the API server then refuses every composition create or update, finalizer removals
//   included, as in a real cluster whose webhook service has no endpoints.
// - /convert: core-provider's conversion webhook (from a CRD's first version bump on); fails the same way, so
//   reads of a bumped kind fail while core-provider is down.
// - /pods: not Krateo's. The sandbox's stand-in for a kubelet's slowness: it marks new pods of the components
//   the fault knobs name (slow image pull, crash loop), and kwok's stages play those marks out.
import { createServer, type Server } from 'node:https'
import { readFileSync } from 'node:fs'
import { LABEL_COMPOSITION_VERSION } from './naming.js'

interface AdmissionReview {
  request: {
    uid: string
    operation?: string
    kind: { group: string; version: string; kind: string }
    subResource?: string
    object?: {
      metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> }
      spec?: { nodeName?: string; containers?: { image?: string }[] }
    }
  }
}

interface ConversionReview {
  request: { uid: string; desiredAPIVersion: string; objects: { apiVersion: string }[] }
}

/** Pod annotations kwok's stages (sandbox/kwok-stages.yaml) act on. */
export const POD_READY_AT = 'sandbox.krateo.io/ready-at'
export const POD_CRASH_LOOP = 'sandbox.krateo.io/crash-loop'

/** What the /pods webhook adds to a new pod of a release: a time it may turn Ready at, or a crash loop. */
export type PodFault = { readyAt?: string; crashLoop?: string }

/** The knob entry for a release: its component's name, or that name plus the cdc's default uid suffix. */
export function knobFor<T>(knobs: Record<string, T>, release: string): T | undefined {
  for (const [name, value] of Object.entries(knobs))
    if (release === name || new RegExp(`^${name}-[0-9a-z]{8}$`).test(release)) return value
  return undefined
}

/** A JSON patch adding annotations to an object that may have none yet. */
function addAnnotations(existing: Record<string, string> | undefined, add: Record<string, string>): unknown[] {
  if (!existing) return [{ op: 'add', path: '/metadata/annotations', value: add }]
  return Object.entries(add).map(([k, v]) => ({
    op: 'add',
    path: `/metadata/annotations/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`,
    value: v,
  }))
}

function admission(review: AdmissionReview, patch?: unknown[]): unknown {
  const response: Record<string, unknown> = { uid: review.request.uid, allowed: true }
  if (patch?.length) {
    response.patchType = 'JSONPatch'
    response.patch = Buffer.from(JSON.stringify(patch)).toString('base64')
  }
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response }
}

/** Every served version has the same shape, so converting is relabelling apiVersion. */
function convert(review: ConversionReview): unknown {
  const { uid, desiredAPIVersion, objects } = review.request
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'ConversionReview',
    response: {
      uid,
      result: { status: 'Success' },
      convertedObjects: objects.map((o) => ({ ...o, apiVersion: desiredAPIVersion })),
    },
  }
}

export interface WebhookHooks {
  coreProviderAlive: () => boolean
  /** Operations whose writes get the version label (the generation profile's stampOn). */
  stampOn: () => string[]
  /** The fault a new pod of this release gets, if any. */
  podFault: (release: string) => PodFault | null
  /** The node a new pod is bound to at once (the real engine's pods run on the process node), if any. */
  nodeFor?: (images: string[]) => string | null
}

export class WebhookServer {
  private server: Server
  url = ''

  constructor(
    certFile: string,
    keyFile: string,
    private hooks: WebhookHooks,
  ) {
    this.server = createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, (req, res) => {
      let body = ''
      req.setEncoding('utf8')
      req.on('data', (c: string) => {
        body += c
      })
      req.on('end', () => {
        const answer = this.answer(req.url ?? '', body)
        if (answer === null) {
          res.writeHead(503).end('core-provider is not running')
          return
        }
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify(answer))
      })
    })
  }

  /** The response body, or null for "service unavailable". */
  private answer(path: string, body: string): unknown {
    if (path.startsWith('/pods')) return this.pods(JSON.parse(body) as AdmissionReview)
    if (!this.hooks.coreProviderAlive()) return null
    if (path.startsWith('/convert')) return convert(JSON.parse(body) as ConversionReview)
    const review = JSON.parse(body) as AdmissionReview
    if (review.request.subResource || !this.hooks.stampOn().includes(review.request.operation ?? 'CREATE'))
      return admission(review)
    const labels = review.request.object?.metadata?.labels
    const ops = labels
      ? [
          {
            op: 'add',
            path: `/metadata/labels/${LABEL_COMPOSITION_VERSION.replace('/', '~1')}`,
            value: review.request.kind.version,
          },
        ]
      : [{ op: 'add', path: '/metadata/labels', value: { [LABEL_COMPOSITION_VERSION]: review.request.kind.version } }]
    return admission(review, ops)
  }

  private pods(review: AdmissionReview): unknown {
    const meta = review.request.object?.metadata
    const spec = review.request.object?.spec
    const node = spec && !spec.nodeName ? this.hooks.nodeFor?.((spec.containers ?? []).map((c) => c.image ?? '')) : null
    const ops: unknown[] = node ? [{ op: 'add', path: '/spec/nodeName', value: node }] : []
    const release = meta?.labels?.['app.kubernetes.io/instance']
    const fault = release ? this.hooks.podFault(release) : null
    const add: Record<string, string> = {}
    // A process pod (the real engine's) honours the slow start only; kwok's stages play both faults.
    if (fault?.readyAt) add[POD_READY_AT] = fault.readyAt
    if (fault?.crashLoop && !node) add[POD_CRASH_LOOP] = fault.crashLoop
    if (Object.keys(add).length) ops.push(...addAnnotations(meta?.annotations, add))
    return admission(review, ops)
  }

  /**
   * Node closes an idle keep-alive connection after 5 s; kube-apiserver's webhook client keeps one up to 90 s and
   * may send its next call on it as Node closes it ("connection reset", a 500 for the write). A Go server, as
   * the real core-provider's, has no such short limit: the client is the one that closes.
   */
  static readonly IDLE_MS = 120_000

  /** Listens on port (0: any free one). */
  listen(port = 0): Promise<void> {
    this.server.keepAliveTimeout = WebhookServer.IDLE_MS
    this.server.headersTimeout = WebhookServer.IDLE_MS + 1000
    return new Promise((resolve) => {
      this.server.listen(port, '127.0.0.1', () => {
        const addr = this.server.address()
        this.url = `https://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`
        resolve()
      })
    })
  }
}
