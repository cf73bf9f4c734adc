// The installer chart's hook Jobs, carried out. The real Jobs run kubectl scripts in their pods; kwok runs no
// containers, so the sandbox does each Job's steps through the API as that Job's ServiceAccount (impersonated,
// so missing rights fail as they would), then writes the result on the pod, and kwok ends the pod with it
// (sandbox/kwok-stages.yaml, pod-hook-*). helm waits for the Job as it does for a real one. The steps mirror
// the chart's templates (contract section 1, "The post-install hook" and "Teardown the chart attempts with hooks").
import { parse } from 'yaml'
import { ApiError, Informer, type KObject, type Rest } from './rest.js'
import type { EngineContext } from './context.js'
import { knobFor } from './webhook.js'
import { ANN_CREATE_FAILED, ANN_CREATE_PENDING, COMPOSITION_GROUP } from './naming.js'

export const HOOK_LABEL = 'sandbox.krateo.io/hook'
export const HOOK_RESULT = 'sandbox.krateo.io/hook-result'

const CD_API = '/apis/core.krateo.io/v1alpha1'
const CRD_API = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions'
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface Condition {
  type: string
  status: string
}
const conditionTrue = (o: KObject | null, type: string) =>
  ((o?.status as { conditions?: Condition[] } | undefined)?.conditions ?? []).some(
    (c) => c.type === type && c.status === 'True',
  )

export class HookRunner {
  private pods: Informer
  private running = new Set<string>()

  constructor(private ctx: EngineContext) {
    this.pods = new Informer(ctx.rest, `/api/v1/pods?labelSelector=${encodeURIComponent(HOOK_LABEL)}`, (ev, pod) => {
      if (ev !== 'delete') this.consider(pod)
    })
  }

  start(): void {
    this.pods.start()
  }

  /** A hook pod that started (its image pulled) and has no result yet: carry out its Job's steps once. */
  private consider(pod: KObject): void {
    const uid = pod.metadata.uid!
    if (pod.metadata.annotations?.[HOOK_RESULT] || pod.metadata.deletionTimestamp || this.running.has(uid)) return
    if ((pod.status as { phase?: string } | undefined)?.phase !== 'Running') return
    this.running.add(uid)
    const hook = pod.metadata.labels![HOOK_LABEL]!
    const ns = pod.metadata.namespace!
    const as = this.ctx.rest.asServiceAccount(
      ns,
      (pod.spec as { serviceAccountName?: string }).serviceAccountName ?? 'default',
    )
    const steps = this.steps(hook, ns, as)
    void (async () => {
      let result = 'succeeded'
      try {
        if (knobFor(Object.fromEntries(this.ctx.settings().hookFails.map((h) => [h, true])), hook))
          throw new Error('fails (sandbox fault)')
        if (!steps) throw new Error(`no steps known for hook ${hook}`)
        this.ctx.log(
          `hook ${ns}/${hook}: running as ${(pod.spec as { serviceAccountName?: string }).serviceAccountName ?? 'default'}`,
        )
        await steps()
        this.ctx.log(`hook ${ns}/${hook}: done`)
      } catch (err) {
        result = 'failed'
        this.ctx.log(`hook ${ns}/${hook}: failed: ${(err as Error).message}`)
      }
      await this.ctx.rest
        .mergePatch(`/api/v1/namespaces/${ns}/pods/${pod.metadata.name}`, {
          metadata: { annotations: { [HOOK_RESULT]: result } },
        })
        .catch(() => undefined)
      this.running.delete(uid)
    })()
  }

  private pollMs(): number {
    return (this.ctx.settings().hookPollSeconds ?? 5) * 1000
  }

  private steps(hook: string, ns: string, as: Rest): (() => Promise<void>) | null {
    switch (hook) {
      case 'installer-self-bootstrap':
        return () => selfBootstrap(as, ns, this.ctx.rest)
      case 'bootstrap-teardown':
        return () => bootstrapTeardown(as, ns, this.pollMs())
      case 'installer-ordered-teardown':
        return () => orderedTeardown(as, ns, this.pollMs())
      // Its real ServiceAccount is kept alive by hook annotations; the fixture does not model that, so it acts as admin.
      case 'post-delete-cleanup':
        return () => postDeleteCleanup(this.ctx.rest, ns)
      default:
        return null
    }
  }
}

async function until<T>(
  what: string,
  tries: number,
  everyMs: number,
  check: () => Promise<T | null | false | undefined>,
): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const v = await check().catch(() => null)
    if (v) return v
    await sleep(everyMs)
  }
  throw new Error(`timed out waiting for ${what}`)
}

/**
 * The post-install/post-upgrade hook: apply the installer CD, then the Installer CR, then strip stale create
 * marks until it syncs. `kubelet` reads what the pod mounts (the installer-self-cr ConfigMap): the Job's own
 * account may not.
 */
async function selfBootstrap(rest: Rest, ns: string, kubelet: Rest): Promise<void> {
  await until('CRD compositiondefinitions.core.krateo.io', 120, 1000, async () =>
    conditionTrue(await rest.getOrNull(`${CRD_API}/compositiondefinitions.core.krateo.io`), 'Established'),
  )
  const cm = await kubelet.get<{ data: Record<string, string> }>(
    `/api/v1/namespaces/${ns}/configmaps/installer-self-cr`,
  )
  const cd = parse(cm.data['compositiondefinition.yaml']!) as KObject
  const cdPath = `${CD_API}/namespaces/${ns}/compositiondefinitions`
  if (await rest.getOrNull(`${cdPath}/${cd.metadata.name}`))
    await rest.mergePatch(`${cdPath}/${cd.metadata.name}`, {
      metadata: { labels: cd.metadata.labels ?? {} },
      spec: cd.spec,
    })
  else await rest.create(cdPath, { ...cd, metadata: { ...cd.metadata, namespace: ns } })
  const installer = parse(cm.data['installer.yaml']!) as KObject
  const version = installer.apiVersion!.split('/')[1]!
  const installers = `/apis/${COMPOSITION_GROUP}/${version}/namespaces/${ns}/installers`
  await until('installers to be listable', 300, 1000, async () => (await rest.raw('GET', installers)).status === 200)
  const existing = await rest.getOrNull(`${installers}/${installer.metadata.name}`)
  const patch = cm.data['components-patch.json']
  if (existing && patch) await rest.mergePatch(`${installers}/${installer.metadata.name}`, JSON.parse(patch))
  else if (!existing) {
    // A kind created moments ago can answer 503 for a few seconds; the script's kubectl apply retries too.
    await until('the Installer CR to be created', 30, 1000, async () => {
      try {
        await rest.create(installers, { ...installer, metadata: { ...installer.metadata, namespace: ns } })
        return true
      } catch (err) {
        if (err instanceof ApiError && err.status === 409) return true
        throw err
      }
    })
  }
  // Up to 30 x 10 s: a create result lost by the cdc would block the Installer for good; take the stale marks away.
  for (let i = 0; i < 30; i++) {
    const cr = await rest.getOrNull(`${installers}/${installer.metadata.name}`)
    if (conditionTrue(cr, 'Synced')) return
    const ann = cr?.metadata.annotations ?? {}
    if (cr && (ann[ANN_CREATE_PENDING] || ann[ANN_CREATE_FAILED]) && !conditionTrue(cr, 'Ready')) {
      await rest.mergePatch(`${installers}/${installer.metadata.name}`, {
        metadata: { annotations: { [ANN_CREATE_PENDING]: null, [ANN_CREATE_FAILED]: null } },
      })
    }
    await sleep(i === 0 ? 2000 : 10_000)
  }
}

/** The Installer CR at a served version of its CRD (null when there is none). */
async function installerPath(rest: Rest, ns: string): Promise<string | null> {
  const crd = await rest.getOrNull(`${CRD_API}/installers.${COMPOSITION_GROUP}`)
  const version = ((crd?.spec as { versions?: { name: string; served: boolean }[] } | undefined)?.versions ?? [])
    .filter((v) => v.served)
    .pop()?.name
  return version ? `/apis/${COMPOSITION_GROUP}/${version}/namespaces/${ns}/installers/installer` : null
}

/** pre-delete of the bootstrap release: delete the Installer CR only, then wait (110 x 5 s) for the rest to go; exit 0 either way. */
async function bootstrapTeardown(rest: Rest, ns: string, pollMs: number): Promise<void> {
  const path = await installerPath(rest, ns)
  if (path) await rest.delete(path)
  const deadline = Date.now() + 110 * 5000
  while (Date.now() < deadline) {
    const cds = (await rest.list(`${CD_API}/namespaces/${ns}/compositiondefinitions`).catch(() => [])).filter(
      (cd) => cd.metadata.name !== 'installer',
    )
    const crds = (await rest.list(CRD_API).catch(() => [])).filter(
      (c) =>
        (c.spec as { group?: string }).group === COMPOSITION_GROUP &&
        c.metadata.name !== `installers.${COMPOSITION_GROUP}`,
    )
    if (cds.length === 0 && crds.length === 0) return
    await sleep(pollMs)
  }
}

/** pre-delete of the composition release: delete component Compositions kind by kind, in reverse list order, 24 x 5 s per kind. */
async function orderedTeardown(rest: Rest, ns: string, pollMs: number): Promise<void> {
  const path = await installerPath(rest, ns)
  const installer = path ? await rest.getOrNull(path) : null
  const components = (
    (installer?.spec as { components?: { name: string; kind: string }[] } | undefined)?.components ?? []
  )
    .slice()
    .reverse()
  const crds = (await rest.list(CRD_API)).filter((c) => (c.spec as { group?: string }).group === COMPOSITION_GROUP)
  for (const c of components) {
    const crd = crds.find((x) => (x.spec as { names: { kind: string } }).names.kind === c.kind)
    if (!crd) continue
    const spec = crd.spec as { names: { plural: string }; versions: { name: string; served: boolean }[] }
    const version = spec.versions.filter((v) => v.served).pop()?.name
    if (!version) continue
    const obj = `/apis/${COMPOSITION_GROUP}/${version}/namespaces/${ns}/${spec.names.plural}/${c.name}`
    if (!(await rest.getOrNull(obj))) continue
    await rest.delete(obj)
    // The script's bound is 24 tries x 5 s; a shorter poll (a test's knob) keeps that time, not the count.
    const deadline = Date.now() + 24 * 5000
    while (Date.now() < deadline && (await rest.getOrNull(obj))) await sleep(pollMs)
  }
}

/** post-delete: the core-provider webhook, generated *.hyperdx.krateo.io CRDs, leftover cdc bundles. */
async function postDeleteCleanup(rest: Rest, ns: string): Promise<void> {
  const hooks = await rest.list('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations')
  for (const h of hooks) {
    if (((h as { webhooks?: { name: string }[] }).webhooks ?? []).some((w) => w.name === 'core.provider.krateo.io'))
      await rest.delete(`/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${h.metadata.name}`)
  }
  for (const crd of await rest.list(CRD_API))
    if (crd.metadata.name.endsWith('.hyperdx.krateo.io')) await rest.delete(`${CRD_API}/${crd.metadata.name}`)
  for (const d of await rest.list(
    `/apis/apps/v1/namespaces/${ns}/deployments`,
    'app.kubernetes.io/component=composition-dynamic-controller',
  )) {
    await rest.delete(`/apis/apps/v1/namespaces/${ns}/deployments/${d.metadata.name}?propagationPolicy=Background`)
  }
}
