// Cluster access: loading the user's kubeconfig and context, checking the API answers, and turning the
// client library's failures into one-line UserErrors.
import http from 'node:http'
import https from 'node:https'
import {
  ApiextensionsV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  VersionApi,
} from '@kubernetes/client-node'
import { ExitCode, UserError, printable } from '../platform/errors.js'
import { loadKubeConfig, pooledAgent } from './kubeconfig.js'
import type { KObj } from '../platform/kobj.js'

export interface ClusterOptions {
  kubeconfig?: string
  context?: string
}

export interface Cluster {
  kc: KubeConfig
  core: CoreV1Api
  custom: CustomObjectsApi
  crds: ApiextensionsV1Api
  authz: AuthorizationV1Api
  server: string
  context: string
}

export function loadCluster(opts: ClusterOptions): Cluster {
  const kc = loadKubeConfig({
    kubeconfig: opts.kubeconfig,
    env: process.env.KUBECONFIG,
    inCluster: !!process.env.KUBERNETES_SERVICE_HOST,
  })
  if (opts.context) {
    if (!kc.getContextObject(opts.context)) {
      const known =
        kc
          .getContexts()
          .map((c) => c.name)
          .join(', ') || 'none'
      throw new UserError(
        `context "${opts.context}" is not in the kubeconfig (known: ${known})`,
        ExitCode.Cluster,
        'pass one of those with --context',
      )
    }
    kc.setCurrentContext(opts.context)
  }
  // Every request of the API clients gets a deadline, so a hung API server cannot hang a command (watches
  // and raw lists set their own).
  const authenticate = kc.applySecurityAuthentication.bind(kc)
  kc.applySecurityAuthentication = async (context) => {
    await authenticate(context)
    if (!context.getSignal()) context.setSignal(AbortSignal.timeout(API_TIMEOUT_MS))
  }
  const cluster = kc.getCurrentCluster()
  if (!cluster)
    throw new UserError(
      'the kubeconfig has no current cluster',
      ExitCode.Cluster,
      'pass --kubeconfig and --context pointing at your cluster',
    )
  return {
    kc,
    core: kc.makeApiClient(CoreV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
    crds: kc.makeApiClient(ApiextensionsV1Api),
    authz: kc.makeApiClient(AuthorizationV1Api),
    server: cluster.server,
    context: kc.getCurrentContext(),
  }
}

/** The HTTP status of a failed API call, or undefined for a transport failure. */
export function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'number' ? code : undefined
}

/**
 * One line for a failed read: the status, then the API server's own message (else the error's first line, or
 * plain words for 401/403), with a hint when a conversion webhook is what failed. For status and watches alike.
 */
export function readFailure(err: unknown): string {
  const body = (err as { body?: unknown }).body
  let message = ''
  try {
    message =
      (typeof body === 'string'
        ? (JSON.parse(body) as { message?: string })
        : (body as { message?: string } | undefined)
      )?.message ?? ''
  } catch {
    /* not JSON */
  }
  const status = statusOf(err) ?? (err as { statusCode?: unknown }).statusCode
  const plain = status === 401 ? 'the credentials were refused (expired?)' : status === 403 ? 'permission denied' : ''
  const text = message || plain || (err as Error).message?.split('\n')[0]?.slice(0, 200) || String(err)
  const hint = /conversion webhook/i.test(text) ? ' (core-provider, which serves the conversion, is not answering)' : ''
  return `${typeof status === 'number' ? `HTTP ${status}: ` : ''}${text}${hint}`
}

export function isNotFound(err: unknown): boolean {
  return statusOf(err) === 404
}

/** How long any single API request may take. */
export const API_TIMEOUT_MS = 60_000

/** How long the first request may take before the cluster counts as unreachable (connect, TLS and answer). */
export const REACH_TIMEOUT_MS = Number(process.env.KRATEO_INSTALLER_CONNECT_TIMEOUT_MS ?? 20_000)

/** Checks the API answers and returns its version; a dead or refusing cluster becomes one line. */
export async function checkReachable(cluster: Cluster, timeoutMs = REACH_TIMEOUT_MS): Promise<string> {
  try {
    // A server that accepts the connection and never answers must not hang the CLI (kubectl gives up too).
    let timer: NodeJS.Timeout | undefined
    const hung = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${Math.round(timeoutMs / 1000)}s`)), timeoutMs)
    })
    const version = await Promise.race([cluster.kc.makeApiClient(VersionApi).getCode(), hung]).finally(() =>
      clearTimeout(timer),
    )
    return version.gitVersion
  } catch (err) {
    throw apiFailure(err, cluster, 'reach the cluster')
  }
}

/** Errors of a connection that did not get an answer: the server is down or restarting, not refusing. */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
])

/** The API server could not be reached (or a proxy in front of it answered 502-504): worth retrying during a run. */
export function isUnreachable(err: unknown): boolean {
  if (err instanceof UserError) return err.transient
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code === 'string' && UNREACHABLE_CODES.has(code)) return true
  if (code === 502 || code === 503 || code === 504) return true
  return /ECONNREFUSED|ECONNRESET|socket hang up|no answer in|aborted due to timeout/i.test(
    (err as Error | null)?.message ?? '',
  )
}

export function apiFailure(err: unknown, cluster: Cluster, doing: string): UserError {
  const failure = describeFailure(err, cluster, doing)
  failure.transient = isUnreachable(err)
  return failure
}

function describeFailure(err: unknown, cluster: Cluster, doing: string): UserError {
  const status = statusOf(err)
  if (status === 401)
    return new UserError(
      `cannot ${doing} at ${cluster.server}: the credentials of context "${cluster.context}" were refused (401)`,
      ExitCode.Cluster,
      'log in again or pass another --context',
    )
  if (status === 403)
    return new UserError(
      `cannot ${doing}: permission denied for context "${cluster.context}" (403)`,
      ExitCode.Permission,
      'ask for cluster-admin or run as a user who has it',
    )
  if (status !== undefined) {
    // The API's own words (a rejected field, say), one line, control characters escaped.
    const said = printable(
      readFailure(err)
        .replace(/^HTTP \d+: /, '')
        .split('\n')[0]!
        .slice(0, 300),
    )
    return new UserError(
      `cannot ${doing}: the API answered HTTP ${status}${said && !/^HTTP-Code: /.test(said) ? `: ${said}` : ''}`,
      ExitCode.Cluster,
      'check the cluster with --verbose',
    )
  }
  const reason = (err as Error)?.message?.split('\n')[0] ?? String(err)
  return new UserError(
    `cannot ${doing} at ${cluster.server}: ${reason}`,
    ExitCode.Cluster,
    'check that the cluster is running and --kubeconfig/--context point at it',
  )
}

/** Runs API calls; a failure becomes one line naming what was being done (a UserError passes as it is). */
export async function apiCall<T>(cluster: Cluster, doing: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    if (err instanceof UserError) throw err
    throw apiFailure(err, cluster, doing)
  }
}

export interface RequestOptions {
  timeoutMs?: number
  contentType?: string
  accept?: string
}

/** Lists as metadata only (PartialObjectMetadataList): names, labels and owners, never a Secret's data. */
export const METADATA_ONLY = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json'

/** GET of any API path with the kubeconfig's credentials; null on 404. */
export async function getPath<T = KObj>(cluster: Cluster, path: string, opts?: RequestOptions): Promise<T | null> {
  return requestPath<T>(cluster, 'GET', path, undefined, opts)
}

/**
 * A request to any API path with the kubeconfig's credentials, for what the generated clients get wrong or
 * lack (MicroTime fields, lists by raw path). null on 404; other failures carry `code` like the clients'
 * errors. Bounded in time, and a cut connection or a non-JSON answer is an error, never a crash.
 */
export async function requestPath<T = KObj>(
  cluster: Cluster,
  method: string,
  path: string,
  body?: unknown,
  { timeoutMs = 30_000, contentType = 'application/json', accept = 'application/json' }: RequestOptions = {},
): Promise<T | null> {
  const opts: https.RequestOptions = {}
  await cluster.kc.applyToHTTPSOptions(opts)
  if (opts.agent instanceof https.Agent && !cluster.kc.getCurrentCluster()?.proxyUrl)
    opts.agent = pooledAgent(opts.agent)
  const url = new URL(cluster.server + path)
  const payload = body === undefined ? undefined : JSON.stringify(body)
  const transport = url.protocol === 'http:' ? http : https
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {
      ...(opts.headers as Record<string, string>),
      accept,
    }
    if (payload !== undefined) {
      headers['content-type'] = contentType
      headers['content-length'] = Buffer.byteLength(payload)
    }
    const req = transport.request(url, { ...opts, method, headers, timeout: timeoutMs }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => {
        text += c
      })
      res.on('error', reject)
      res.on('end', () => {
        if (res.statusCode === 404) return resolve(null)
        if ((res.statusCode ?? 500) >= 400) {
          let message = text
          try {
            message = (JSON.parse(text) as { message?: string }).message ?? text
          } catch {
            /* not JSON */
          }
          return reject(
            Object.assign(new Error(`${method} ${path}: HTTP ${res.statusCode}: ${message}`), {
              code: res.statusCode,
              body: text,
            }),
          )
        }
        try {
          resolve(text ? (JSON.parse(text) as T) : null)
        } catch {
          reject(new Error(`${method} ${path}: the API answered something that is not JSON`))
        }
      })
    })
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in ${Math.round(timeoutMs / 1000)}s`)))
    req.on('error', reject)
    req.end(payload)
  })
}
