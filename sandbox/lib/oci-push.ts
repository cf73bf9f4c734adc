// Pushes a packaged chart to an OCI registry the way `helm push` stores it (helm's config and chart-content media
// types, the version as the tag), over the registry's HTTP API from this process. A sandbox publishes about 140
// fixture charts at start: one helm process each cost about 15 s of CPU per sandbox, most of a test file's start.
// Everything that reads them (the CLI, the engine, the tests) still pulls with real helm.
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { Agent, request as httpsRequest } from 'node:https'
import { gunzipSync } from 'node:zlib'
import { parse } from 'yaml'

const CONFIG_MEDIA_TYPE = 'application/vnd.cncf.helm.config.v1+json'
const CHART_MEDIA_TYPE = 'application/vnd.cncf.helm.chart.content.v1.tar+gzip'
const MANIFEST_MEDIA_TYPE = 'application/vnd.oci.image.manifest.v1+json'

export interface OciTarget {
  /** host:port */
  registry: string
  /** The CA of a registry served over TLS; plain HTTP without it. */
  ca?: string
  login?: { username: string; password: string }
}

/** Pushes the chart archive `tgz` to oci://<registry>/<repo>/<chart name>:<chart version>. */
export async function pushChart(tgz: string, target: OciTarget, repo: string, agent?: Agent): Promise<void> {
  const archive = readFileSync(tgz)
  const meta = chartMetadata(archive)
  const name = `${repo}/${meta.name}`
  const config = Buffer.from(JSON.stringify(meta))
  const layer = await putBlob(target, name, archive, agent)
  const cfg = await putBlob(target, name, config, agent)
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST_MEDIA_TYPE,
      config: { mediaType: CONFIG_MEDIA_TYPE, digest: cfg, size: config.length },
      layers: [{ mediaType: CHART_MEDIA_TYPE, digest: layer, size: archive.length }],
      annotations: {
        'org.opencontainers.image.title': meta.name,
        'org.opencontainers.image.version': meta.version,
      },
    }),
  )
  // helm tags a version's "+" as "_" (a tag may not hold "+").
  const tag = String(meta.version).replace(/\+/g, '_')
  await call(target, 'PUT', `/v2/${name}/manifests/${tag}`, manifest, { 'content-type': MANIFEST_MEDIA_TYPE }, agent)
}

/** Chart.yaml of a packaged chart (the first <chart>/Chart.yaml entry of its tar), as helm's config JSON. */
function chartMetadata(archive: Buffer): { name: string; version: string } & Record<string, unknown> {
  const tar = gunzipSync(archive)
  for (let at = 0; at + 512 <= tar.length;) {
    const header = tar.subarray(at, at + 512)
    const path = header.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '')
    if (!path) break
    const size = parseInt(header.subarray(124, 136).toString('utf8').replace(/\0.*$/s, '').trim() || '0', 8)
    if (/^[^/]+\/Chart\.yaml$/.test(path))
      return parse(tar.subarray(at + 512, at + 512 + size).toString('utf8')) as { name: string; version: string }
    at += 512 + Math.ceil(size / 512) * 512
  }
  throw new Error('no Chart.yaml in the chart archive')
}

async function putBlob(target: OciTarget, name: string, data: Buffer, agent?: Agent): Promise<string> {
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`
  const started = await call(target, 'POST', `/v2/${name}/blobs/uploads/`, Buffer.alloc(0), {}, agent)
  const location = new URL(started.headers.location!, `http://${target.registry}`)
  location.searchParams.set('digest', digest)
  await call(
    target,
    'PUT',
    location.pathname + location.search,
    data,
    { 'content-type': 'application/octet-stream' },
    agent,
  )
  return digest
}

function call(
  target: OciTarget,
  method: string,
  path: string,
  body: Buffer,
  headers: Record<string, string>,
  agent?: Agent,
): Promise<{ status: number; headers: Record<string, string | undefined> }> {
  const auth = target.login
    ? { authorization: `Basic ${Buffer.from(`${target.login.username}:${target.login.password}`).toString('base64')}` }
    : {}
  const [host, port] = target.registry.split(':')
  const options = {
    host,
    port: Number(port ?? (target.ca ? 443 : 80)),
    method,
    path,
    headers: { ...headers, ...auth, 'content-length': body.length },
  }
  return new Promise((resolve, reject) => {
    const done = (res: import('node:http').IncomingMessage) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (text += c))
      res.on('end', () =>
        (res.statusCode ?? 500) >= 300
          ? reject(new Error(`${method} ${target.registry}${path}: HTTP ${res.statusCode}: ${text.slice(0, 300)}`))
          : resolve({ status: res.statusCode!, headers: res.headers as Record<string, string | undefined> }),
      )
    }
    const req = target.ca
      ? httpsRequest({ ...options, ca: target.ca, servername: host, agent }, done)
      : httpRequest(options, done)
    req.on('error', reject)
    req.end(body)
  })
}
