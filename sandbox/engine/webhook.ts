// The core-provider mutating webhook, really served over HTTPS on loopback. It stamps
// krateo.io/composition-version on compositions while core-provider runs; while core-provider is down it
// fails, and with failurePolicy Fail the API server then refuses every composition create or update,
// finalizer removals included, as in a real cluster whose webhook service has no endpoints.
import { createServer, type Server } from 'node:https'
import { readFileSync } from 'node:fs'
import { LABEL_COMPOSITION_VERSION } from './naming.js'

interface AdmissionReview {
  request: {
    uid: string
    kind: { group: string; version: string; kind: string }
    subResource?: string
    object?: { metadata?: { labels?: Record<string, string> } }
  }
}

export class WebhookServer {
  private server: Server
  url = ''

  constructor(certFile: string, keyFile: string, private coreProviderAlive: () => boolean) {
    this.server = createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, (req, res) => {
      let body = ''
      req.setEncoding('utf8')
      req.on('data', (c: string) => { body += c })
      req.on('end', () => {
        if (!this.coreProviderAlive()) {
          res.writeHead(503).end('core-provider is not running')
          return
        }
        const review = JSON.parse(body) as AdmissionReview
        const response: Record<string, unknown> = { uid: review.request.uid, allowed: true }
        if (!review.request.subResource) {
          const labels = review.request.object?.metadata?.labels
          const ops = labels
            ? [{ op: 'add', path: `/metadata/labels/${LABEL_COMPOSITION_VERSION.replace('/', '~1')}`, value: review.request.kind.version }]
            : [{ op: 'add', path: '/metadata/labels', value: { [LABEL_COMPOSITION_VERSION]: review.request.kind.version } }]
          response.patchType = 'JSONPatch'
          response.patch = Buffer.from(JSON.stringify(ops)).toString('base64')
        }
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response }))
      })
    })
  }

  listen(): Promise<void> {
    return new Promise((resolve) => {
      this.server.listen(0, '127.0.0.1', () => {
        const addr = this.server.address()
        this.url = `https://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`
        resolve()
      })
    })
  }
}
