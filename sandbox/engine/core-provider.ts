// Simulated core-provider: the CompositionDefinition lifecycle of contract section 2. It works only while
// a Deployment labelled app.kubernetes.io/name=core-provider is available, like the real pod.
import { ApiError, Informer, type KObject } from './rest.js'
import { EngineContext } from './context.js'
import {
  CREATE_RESULT_LOST,
  type Condition,
  createResultLost,
  now,
  ready,
  sameConditions,
  setConditions,
  synced,
} from './conditions.js'
import {
  ANN_CREATE_FAILED,
  ANN_CREATE_PENDING,
  ANN_CREATE_SUCCEEDED,
  ANN_DELETION_POLICY,
  ANN_MANAGEMENT_POLICY,
  ANN_PAUSED,
  CD_FINALIZER,
  STILL_EXIST_FINALIZER,
  COMPOSITION_GROUP,
  LABEL_COMPOSITION_VERSION,
  bundleBase,
  dashedVersion,
  kindFromChart,
  pluralFromKind,
} from './naming.js'
import type { WebhookServer } from './webhook.js'
import type { RegistryCredentials } from './helm.js'

const CD_PATH = '/apis/core.krateo.io/v1alpha1'
const cdPath = (ns: string, name = '') => `${CD_PATH}/namespaces/${ns}/compositiondefinitions${name ? '/' + name : ''}`

/** Fixed status schema of every generated CRD. */
const STATUS_SCHEMA = {
  type: 'object',
  properties: {
    helmChartUrl: { type: 'string' },
    helmChartVersion: { type: 'string' },
    digest: { type: 'string' },
    previousDigest: { type: 'string' },
    managed: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          apiVersion: { type: 'string' },
          resource: { type: 'string' },
          name: { type: 'string' },
          namespace: { type: 'string' },
        },
      },
    },
    conditions: {
      type: 'array',
      items: {
        type: 'object',
        required: ['type', 'status', 'reason', 'lastTransitionTime'],
        properties: {
          type: { type: 'string' },
          status: { type: 'string' },
          reason: { type: 'string' },
          message: { type: 'string' },
          lastTransitionTime: { type: 'string', format: 'date-time' },
        },
      },
    },
  },
}

/** JSON schema (values.schema.json) to a structural OpenAPI v3 schema for a CRD. */
export function toStructural(schema: unknown): Record<string, unknown> {
  if (!schema || typeof schema !== 'object') return { type: 'object', 'x-kubernetes-preserve-unknown-fields': true }
  const s = schema as Record<string, unknown>
  const out: Record<string, unknown> = {}
  for (const key of [
    'type',
    'description',
    'enum',
    'minimum',
    'maximum',
    'minLength',
    'maxLength',
    'pattern',
    'required',
    'format',
  ]) {
    if (s[key] !== undefined) out[key] = s[key]
  }
  if (Array.isArray(out.type)) {
    const types = (out.type as string[]).filter((t) => t !== 'null')
    out.type = types[0]
    if ((s.type as string[]).includes('null')) out.nullable = true
  }
  if (s.properties && typeof s.properties === 'object') {
    out.properties = Object.fromEntries(Object.entries(s.properties).map(([k, v]) => [k, toStructural(v)]))
  }
  if (s.items) out.items = toStructural(s.items)
  if (out.type === 'object' || (!out.type && out.properties)) {
    out.type = 'object'
    if (s.additionalProperties && typeof s.additionalProperties === 'object' && !s.properties)
      out.additionalProperties = toStructural(s.additionalProperties)
    else if (s.additionalProperties !== false) out['x-kubernetes-preserve-unknown-fields'] = true
  }
  return out
}

interface CDStatus {
  conditions?: Condition[]
  apiVersion?: string
  kind?: string
  resource?: string
  packageUrl?: string
  digest?: string
  managed?: unknown[]
}

const CDC_CLUSTER_RULES = [
  { apiGroups: ['apiextensions.k8s.io'], resources: ['customresourcedefinitions'], verbs: ['get', 'list'] },
  { apiGroups: [COMPOSITION_GROUP], resources: ['*'], verbs: ['*'] },
  {
    apiGroups: ['rbac.authorization.k8s.io'],
    resources: ['roles', 'rolebindings', 'clusterroles', 'clusterrolebindings'],
    verbs: ['*'],
  },
  { apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'watch', 'create'] },
]
const CDC_NAMESPACE_RULES = [
  { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'create', 'delete', 'update'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch', 'update'] },
  {
    apiGroups: ['core.krateo.io'],
    resources: ['compositiondefinitions', 'compositiondefinitions/status'],
    verbs: ['get', 'list', 'watch'],
  },
]

export class CoreProvider {
  readonly cds: Informer
  private raceLost = new Set<string>()
  private stampInstalled = false

  constructor(
    private ctx: EngineContext,
    private webhook: WebhookServer,
    private caBundle: string,
  ) {
    this.cds = new Informer(ctx.rest, `${CD_PATH}/compositiondefinitions`, (ev, cd, old) => {
      if (ev === 'delete') return
      // provider-runtime reacts to spec, metadata and deletion changes; our own status writes are not events.
      if (
        ev === 'update' &&
        old &&
        old.metadata.generation === cd.metadata.generation &&
        JSON.stringify(old.metadata.annotations) === JSON.stringify(cd.metadata.annotations) &&
        JSON.stringify(old.metadata.finalizers) === JSON.stringify(cd.metadata.finalizers) &&
        old.metadata.deletionTimestamp === cd.metadata.deletionTimestamp
      )
        return
      this.enqueue(cd)
    })
    ctx.onDeployment((d, old) => {
      // core-provider (re)started: reconcile every CompositionDefinition at once.
      if (d.metadata.labels?.['app.kubernetes.io/name'] !== 'core-provider') return
      if (
        EngineContext.available(d) &&
        (!EngineContext.available(old) || old?.metadata.generation !== d.metadata.generation)
      ) {
        this.stampInstalled = false
        this.enqueueAll()
      }
    })
  }

  start(): void {
    this.cds.start()
    this.ctx.every(
      () => this.ctx.settings().resyncSeconds,
      () => this.enqueueAll(),
    )
  }

  enqueueAll(): void {
    for (const cd of this.cds.items.values()) this.enqueue(cd)
  }

  private enqueue(cd: KObject, afterMs = 0): void {
    const key = `cd/${cd.metadata.namespace}/${cd.metadata.name}`
    const work = () => this.reconcile(cd.metadata.namespace!, cd.metadata.name)
    if (afterMs) this.ctx.queue.addAfter(key, afterMs, work)
    else this.ctx.queue.add(key, work)
  }

  private async setStatus(cd: KObject, patch: CDStatus, ...conds: Condition[]): Promise<void> {
    const current = (cd.status ?? {}) as CDStatus
    const conditions = setConditions(current.conditions, ...conds)
    const changed =
      !sameConditions(current.conditions, conditions) ||
      Object.entries(patch).some(
        ([k, v]) => JSON.stringify((current as Record<string, unknown>)[k]) !== JSON.stringify(v),
      )
    if (!changed) return
    await this.ctx.rest.mergePatch(`${cdPath(cd.metadata.namespace!, cd.metadata.name)}/status`, {
      status: { ...patch, conditions },
    })
  }

  /** Installs what stamps the composition version: S core-provider's webhook, N a MutatingAdmissionPolicy. */
  private async ensureVersionStamp(core: KObject): Promise<void> {
    if (this.stampInstalled) return
    const profile = this.ctx.profile()
    if (profile.versionStamp === 'webhook') await this.applyWebhook(core, profile.stampOn)
    else await this.applyPolicy(core, profile.stampOn)
    this.stampInstalled = true
  }

  private async applyWebhook(core: KObject, stampOn: string[]): Promise<void> {
    const name = core.metadata.labels?.['app.kubernetes.io/instance'] ?? 'core-provider'
    // UPDATE is intercepted too (CRD defaults), which is why every composition write fails while core-provider is down.
    await this.ctx.rest.createOrReplace('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name, labels: { 'app.kubernetes.io/name': 'core-provider' } },
      webhooks: [
        {
          name: 'core.provider.krateo.io',
          clientConfig: { url: `${this.webhook.url}/mutate`, caBundle: this.caBundle },
          rules: [
            {
              operations: [...new Set([...stampOn, 'CREATE', 'UPDATE'])],
              apiGroups: [COMPOSITION_GROUP],
              apiVersions: ['*'],
              resources: ['*/*'],
            },
          ],
          failurePolicy: 'Fail',
          sideEffects: 'None',
          admissionReviewVersions: ['v1'],
          timeoutSeconds: 5,
        },
      ],
    })
  }

  /** Gen N: the API server itself stamps request.kind.version; nothing of core-provider is in the write path. */
  private async applyPolicy(core: KObject, stampOn: string[]): Promise<void> {
    const name = 'core-provider-composition-version'
    const labels = {
      'app.kubernetes.io/name': 'core-provider',
      'app.kubernetes.io/instance': core.metadata.labels?.['app.kubernetes.io/instance'] ?? 'core-provider',
    }
    const base = '/apis/admissionregistration.k8s.io/v1'
    await this.ctx.rest.createOrReplace(`${base}/mutatingadmissionpolicies`, {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingAdmissionPolicy',
      metadata: { name, labels },
      spec: {
        matchConstraints: {
          resourceRules: [
            { apiGroups: [COMPOSITION_GROUP], apiVersions: ['*'], operations: stampOn, resources: ['*'] },
          ],
        },
        failurePolicy: 'Fail',
        reinvocationPolicy: 'Never',
        mutations: [
          {
            patchType: 'ApplyConfiguration',
            applyConfiguration: {
              expression: `Object{metadata: Object.metadata{labels: {"${LABEL_COMPOSITION_VERSION}": request.kind.version}}}`,
            },
          },
        ],
      },
    })
    await this.ctx.rest.createOrReplace(`${base}/mutatingadmissionpolicybindings`, {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingAdmissionPolicyBinding',
      metadata: { name, labels },
      spec: { policyName: name },
    })
  }

  async reconcile(ns: string, name: string): Promise<void> {
    const core = this.ctx.coreProvider()
    if (!core) return
    // Gen S registers its webhook at the first observe after a CRD is generated (certificates.go
    // ManageCertificates from the observe of compositiondefinitions.go), not at start: see observeOrCreate.
    if (this.ctx.profile().versionStamp !== 'webhook') await this.ensureVersionStamp(core)
    const cd = await this.ctx.rest.getOrNull(cdPath(ns, name))
    if (!cd) return
    const ann = cd.metadata.annotations ?? {}
    if (ann[ANN_PAUSED] === 'true' || ann[ANN_MANAGEMENT_POLICY] === 'observe') {
      await this.setStatus(cd, {}, synced('False', 'ReconcilePaused'))
      return
    }
    try {
      if (cd.metadata.deletionTimestamp) return await this.remove(cd)
      if (!cd.metadata.finalizers?.includes(CD_FINALIZER)) {
        await this.ctx.rest.mergePatch(cdPath(ns, name), {
          metadata: { finalizers: [...(cd.metadata.finalizers ?? []), CD_FINALIZER] },
        })
        return // the finalizer update is an event of its own
      }
      await this.observeOrCreate(cd)
    } catch (err) {
      const phase = cd.metadata.deletionTimestamp ? 'delete failed' : 'observe failed'
      const msg = err instanceof Error ? err.message : String(err)
      this.ctx.log(`core-provider: ${ns}/${name}: ${phase}: ${msg}`)
      await this.setStatus(cd, {}, synced('False', 'ReconcileError', `${phase}: ${msg}`)).catch(() => undefined)
      this.enqueue(cd, 5000)
    }
  }

  /** The CD's registry credentials: spec.chart.credentials, the password read from the Secret it names. */
  private async credentials(cd: KObject): Promise<RegistryCredentials | undefined> {
    const creds = (
      cd.spec as {
        chart: {
          credentials?: { username?: string; passwordRef?: { name?: string; namespace?: string; key?: string } }
        }
      }
    ).chart.credentials
    const ref = creds?.passwordRef
    if (!creds?.username || !ref?.name || !ref.key) return undefined
    const secret = await this.ctx.rest.getOrNull<{ data?: Record<string, string> }>(
      `/api/v1/namespaces/${ref.namespace || cd.metadata.namespace}/secrets/${ref.name}`,
    )
    const password = secret?.data?.[ref.key]
    if (!password)
      throw new Error(
        `failed to pull chart: the password of ${creds.username} is not in Secret ${ref.namespace || cd.metadata.namespace}/${ref.name} (key ${ref.key})`,
      )
    return { username: creds.username, password: Buffer.from(password, 'base64').toString() }
  }

  private async target(cd: KObject) {
    const chart = (cd.spec as { chart: { url: string; version?: string } }).chart
    if (this.ctx.settings().chartPullFails.includes(cd.metadata.name)) {
      const host = chart.url.replace(/^oci:\/\//, '').split('/')[0]
      throw new Error(
        `failed to pull chart ${chart.url}:${chart.version ?? ''}: failed to do request: Head "https://${host}/v2/": dial tcp: connect: connection refused (sandbox fault)`,
      )
    }
    const info = await this.ctx.helm.chart(chart.url, chart.version ?? '', await this.credentials(cd))
    const kind = kindFromChart(info.name)
    const plural = pluralFromKind(kind)
    const version = dashedVersion(info.version)
    return {
      chart,
      info,
      kind,
      plural,
      version,
      crdName: `${plural}.${COMPOSITION_GROUP}`,
      base: bundleBase(plural, info.version),
    }
  }

  private async observeOrCreate(cd: KObject): Promise<void> {
    const ns = cd.metadata.namespace!
    const t = await this.target(cd)
    const gvr = `${COMPOSITION_GROUP}/${t.version}, Resource=${t.plural}`
    const crd = await this.ctx.rest.getOrNull(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${t.crdName}`)
    const versions = (crd?.spec as { versions?: { name: string; served: boolean }[] } | undefined)?.versions ?? []
    const serves = versions.some((v) => v.name === t.version && v.served)
    const bundle = await this.ctx.rest.getOrNull(`/apis/apps/v1/namespaces/${ns}/deployments/${t.base}-controller`)
    const status = (cd.status ?? {}) as CDStatus

    if (serves && bundle) {
      const core = this.ctx.coreProvider()
      if (core) await this.ensureVersionStamp(core)
      await this.holdWhileCompositionsExist(cd, t)
      if (this.ctx.profile().pruneStaleVersions && crd) await this.pruneStaleVersions(crd, t.version)
      await this.restoreBundleReplicas(bundle)
      // Observe: up to date. Fill the status and turn Ready.
      const managed = this.bundleObjects(ns, t.base).map(([apiVersion, resource, objName, objNs]) => ({
        apiVersion,
        resource,
        name: objName,
        ...(objNs ? { namespace: objNs } : {}),
      }))
      await this.setStatus(
        cd,
        {
          apiVersion: `${COMPOSITION_GROUP}/${t.version}`,
          kind: t.kind,
          resource: t.plural,
          packageUrl: `${t.chart.url}:${t.info.version}`,
          digest: digestOf(t.chart.url, t.info.version),
          managed,
        },
        ready('True', 'Available'),
        synced('True', 'ReconcileSuccess'),
      )
      return
    }

    // Not up to date: this is an external create (or update, on a version bump).
    if (createResultLost(cd.metadata.annotations, this.ctx.settings().lostCreateGraceSeconds)) {
      await this.setStatus(cd, {}, synced('False', 'ReconcileError', CREATE_RESULT_LOST))
      return
    }
    if (!crd) await this.setStatus(cd, {}, ready('False', 'Unavailable', `crd for '${gvr}' does not exists yet`))
    else await this.setStatus(cd, {}, ready('False', 'Updating'))
    await this.annotate(cd, ANN_CREATE_PENDING)
    const settings = this.ctx.settings()
    if (settings.loseCreateRace.includes(cd.metadata.name) && !this.raceLost.has(cd.metadata.uid!)) {
      // The process "dies" between the pending mark and the result: nothing records the outcome.
      this.raceLost.add(cd.metadata.uid!)
      this.ctx.log(`core-provider: lost the create race for ${ns}/${cd.metadata.name} (fault knob)`)
      return
    }
    try {
      await this.applyCRD(t, crd)
      const previous =
        status.apiVersion && status.apiVersion !== `${COMPOSITION_GROUP}/${t.version}`
          ? status.apiVersion.split('/')[1]
          : undefined
      if (previous && status.resource) await this.bumpVersion(ns, status.resource, previous, t.version, t.plural)
      await this.applyBundle(ns, t, settings.resyncSeconds)
    } catch (err) {
      await this.annotate(cd, ANN_CREATE_FAILED)
      throw new Error(`create failed: ${(err as Error).message}`)
    }
    const fresh = await this.annotate(cd, ANN_CREATE_SUCCEEDED)
    await this.setStatus(fresh, {}, ready('False', 'Creating'), synced('True', 'ReconcileSuccess'))
    this.enqueue(cd, 1000)
  }

  private async annotate(cd: KObject, key: string): Promise<KObject> {
    return this.ctx.rest.mergePatch(cdPath(cd.metadata.namespace!, cd.metadata.name), {
      metadata: { annotations: { [key]: now() } },
    })
  }

  private versionEntry(name: string, schema: Record<string, unknown> | null) {
    return {
      name,
      served: true,
      storage: false,
      subresources: { status: {} },
      additionalPrinterColumns: [
        { name: 'READY', type: 'string', jsonPath: ".status.conditions[?(@.type=='Ready')].status" },
        { name: 'AGE', type: 'date', jsonPath: '.metadata.creationTimestamp' },
      ],
      schema: {
        openAPIV3Schema: {
          type: 'object',
          properties: {
            apiVersion: { type: 'string' },
            kind: { type: 'string' },
            metadata: { type: 'object' },
            spec: toStructural(schema ?? {}),
            status: STATUS_SCHEMA,
          },
        },
      },
    }
  }

  private async applyCRD(t: Awaited<ReturnType<CoreProvider['target']>>, crd: KObject | null): Promise<void> {
    const path = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions'
    if (!crd) {
      await this.ctx.rest.create(path, {
        apiVersion: 'apiextensions.k8s.io/v1',
        kind: 'CustomResourceDefinition',
        metadata: { name: t.crdName, labels: { 'app.kubernetes.io/managed-by': 'core-provider' } },
        spec: {
          group: COMPOSITION_GROUP,
          scope: 'Namespaced',
          names: {
            kind: t.kind,
            plural: t.plural,
            singular: t.kind.toLowerCase(),
            listKind: `${t.kind}List`,
            categories: ['compositions', 'comps'],
          },
          versions: [{ ...this.versionEntry(t.version, t.info.schema), storage: true }],
        },
      })
    } else if ((crd.spec as { versions: { name: string }[] }).versions.some((v) => v.name === t.version)) {
      // Already there (another namespace's CompositionDefinition of the same chart and version): not a bump.
    } else {
      // A version bump: append the new version; storage moves to the hidden vacuum version.
      const spec = crd.spec as { versions: Record<string, unknown>[] }
      const others = spec.versions
        .filter((v) => v.name !== t.version && v.name !== 'vacuum')
        .map((v) => ({ ...v, storage: false }))
      const vacuum = {
        name: 'vacuum',
        served: false,
        storage: true,
        schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
      }
      // From the first bump on, conversion goes through core-provider's webhook (core-provider 0.26.1
      // internal/tools/crd/crd.go:210,230-250): reads of this kind then need core-provider running.
      const conversion = {
        strategy: 'Webhook',
        webhook: {
          clientConfig: { url: `${this.webhook.url}/convert`, caBundle: this.caBundle },
          conversionReviewVersions: ['v1'],
        },
      }
      await this.ctx.rest.put(`${path}/${t.crdName}`, {
        ...crd,
        spec: { ...spec, conversion, versions: [...others, this.versionEntry(t.version, t.info.schema), vacuum] },
      })
    }
    const deadline = Date.now() + 30_000
    while (Date.now() < deadline) {
      const fresh = await this.ctx.rest.get(`${path}/${t.crdName}`)
      const conds = (fresh.status as { conditions?: Condition[] } | undefined)?.conditions ?? []
      const served =
        (fresh.status as { storedVersions?: string[] } | undefined) &&
        conds.some((c) => c.type === 'Established' && c.status === 'True')
      if (served && (await this.ctx.rest.getOrNull(`/apis/${COMPOSITION_GROUP}/${t.version}`))) return
      await new Promise((r) => setTimeout(r, 200))
    }
    throw new Error(`crd ${t.crdName} not established in time`)
  }

  /** The old version's bundle goes; existing compositions are relabelled to the new version. */
  private async bumpVersion(
    ns: string,
    plural: string,
    oldVersion: string,
    newVersion: string,
    newPlural: string,
  ): Promise<void> {
    await this.deleteBundle(ns, `${plural}-${oldVersion}`)
    const items = await this.ctx.rest.list(
      `/apis/${COMPOSITION_GROUP}/${newVersion}/${newPlural}`,
      `${LABEL_COMPOSITION_VERSION}=${oldVersion}`,
    )
    if (this.ctx.profile().relabel === 'per-object-retry') {
      for (const item of items)
        await this.relabelOne(item.metadata.namespace!, item.metadata.name, newVersion, newPlural)
      return
    }
    // As core-provider 0.26.1: one update of each Composition as listed (its resourceVersion); a conflict (any
    // write since the list: a cdc's status, a nudge) ends the relabelling, and nothing retries it, since the next
    // observe finds the CRD and bundle up to date. The real engine showed it: the Composition then has no cdc.
    for (const item of items) {
      const path = `/apis/${COMPOSITION_GROUP}/${newVersion}/namespaces/${item.metadata.namespace}/${newPlural}/${item.metadata.name}`
      const res = await this.ctx.rest.raw('PUT', path, {
        ...item,
        metadata: { ...item.metadata, labels: { ...item.metadata.labels, [LABEL_COMPOSITION_VERSION]: newVersion } },
      })
      if (res.status === 409) {
        this.ctx.log(
          `core-provider: error updating compositions version: ${item.metadata.name}: the object has been modified`,
        )
        return
      }
      if (res.status >= 300) throw new Error(`relabel ${path}: HTTP ${res.status}`)
    }
  }

  /** Gen N: read again before each try; gone or already moved is done; a conflict is tried again. */
  private async relabelOne(ns: string, name: string, version: string, plural: string): Promise<void> {
    const path = `/apis/${COMPOSITION_GROUP}/${version}/namespaces/${ns}/${plural}/${name}`
    for (let attempt = 0; attempt < 5; attempt++) {
      const item = await this.ctx.rest.getOrNull(path)
      if (!item || item.metadata.labels?.[LABEL_COMPOSITION_VERSION] === version) return
      const res = await this.ctx.rest.raw('PUT', path, {
        ...item,
        metadata: { ...item.metadata, labels: { ...item.metadata.labels, [LABEL_COMPOSITION_VERSION]: version } },
      })
      if (res.status < 300 || res.status === 404) return
      if (res.status !== 409) throw new Error(`relabel ${path}: HTTP ${res.status}`)
      await new Promise((r) => setTimeout(r, 200 * (attempt + 1)))
    }
    throw new Error(`relabel ${path}: still conflicting after 5 attempts`)
  }

  private bundleObjects(ns: string, base: string): [string, string, string, string?][] {
    return [
      ['v1', 'serviceaccounts', base, ns],
      ['rbac.authorization.k8s.io/v1', 'clusterroles', base],
      ['rbac.authorization.k8s.io/v1', 'clusterrolebindings', base],
      ['rbac.authorization.k8s.io/v1', 'roles', base, ns],
      ['rbac.authorization.k8s.io/v1', 'rolebindings', base, ns],
      ['v1', 'configmaps', `${base}-configmap`, ns],
      ['v1', 'configmaps', `${base}-jsonschema-configmap`, ns],
      ['apps/v1', 'deployments', `${base}-controller`, ns],
    ]
  }

  private objectPath(apiVersion: string, resource: string, name: string, ns?: string): string {
    const prefix = apiVersion === 'v1' ? '/api/v1' : `/apis/${apiVersion}`
    return `${prefix}${ns ? `/namespaces/${ns}` : ''}/${resource}${name ? '/' + name : ''}`
  }

  private async applyBundle(
    ns: string,
    t: Awaited<ReturnType<CoreProvider['target']>>,
    resyncSeconds: number,
  ): Promise<void> {
    const labels = {
      'app.kubernetes.io/name': `${t.base}-controller`,
      // As core-provider's cdc templates: the plural (the crash-loop knob finds a cdc's pods by it).
      'app.kubernetes.io/instance': t.plural,
      'app.kubernetes.io/component': 'composition-dynamic-controller',
    }
    const meta = (name: string, namespaced = true) => ({ name, ...(namespaced ? { namespace: ns } : {}), labels })
    const create = (apiVersion: string, resource: string, body: Record<string, unknown>, namespaced = true) =>
      this.ctx.rest.createOrIgnore(this.objectPath(apiVersion, resource, '', namespaced ? ns : undefined), body)
    const sa = { kind: 'ServiceAccount', name: t.base, namespace: ns }
    await create('v1', 'serviceaccounts', { metadata: meta(t.base) })
    // The static part of a cdc's rights (core-provider's rbac assets clusterrole.yaml and
    // compositiondefinition-role.yaml): the chart's own kinds come from the cdc's rbacgen (rbacgen.ts).
    await create(
      'rbac.authorization.k8s.io/v1',
      'clusterroles',
      { metadata: meta(t.base, false), rules: CDC_CLUSTER_RULES },
      false,
    )
    await create(
      'rbac.authorization.k8s.io/v1',
      'clusterrolebindings',
      {
        metadata: meta(t.base, false),
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: t.base },
        subjects: [sa],
      },
      false,
    )
    await create('rbac.authorization.k8s.io/v1', 'roles', { metadata: meta(t.base), rules: CDC_NAMESPACE_RULES })
    await create('rbac.authorization.k8s.io/v1', 'rolebindings', {
      metadata: meta(t.base),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: t.base },
      subjects: [sa],
    })
    await create('v1', 'configmaps', {
      metadata: meta(`${t.base}-configmap`),
      data: {
        COMPOSITION_CONTROLLER_GROUP: COMPOSITION_GROUP,
        COMPOSITION_CONTROLLER_VERSION: t.version,
        COMPOSITION_CONTROLLER_RESOURCE: t.plural,
        COMPOSITION_CONTROLLER_KIND: t.kind,
        URL: t.chart.url,
        VERSION: t.info.version,
        COMPOSITION_CONTROLLER_RESYNC_INTERVAL: `${resyncSeconds}s`,
      },
    })
    await create('v1', 'configmaps', {
      metadata: meta(`${t.base}-jsonschema-configmap`),
      data: { 'values.schema.json': JSON.stringify(t.info.schema ?? {}) },
    })
    await create('apps/v1', 'deployments', {
      metadata: meta(`${t.base}-controller`),
      spec: {
        replicas: 1,
        selector: { matchLabels: { 'app.kubernetes.io/name': `${t.base}-controller` } },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: t.base,
            containers: [
              {
                name: 'cdc',
                image: 'ghcr.io/krateoplatformops/composition-dynamic-controller:fake',
                envFrom: [{ configMapRef: { name: `${t.base}-configmap` } }],
              },
            ],
          },
        },
      },
    })
  }

  private async deleteBundle(ns: string, base: string): Promise<void> {
    for (const [apiVersion, resource, name, objNs] of this.bundleObjects(ns, base)) {
      await this.ctx.rest.delete(
        this.objectPath(apiVersion, resource, name, objNs) +
          (resource === 'deployments' ? '?propagationPolicy=Background' : ''),
      )
    }
  }

  /**
   * As core-provider 0.26.1's Delete (compositiondefinitions.go:535-646): the kind and version come from the chart,
   * not from the status, so a CD deleted before its first observe filled the status still takes its CRD along.
   */
  private async remove(cd: KObject): Promise<void> {
    const ns = cd.metadata.namespace!
    if (!cd.metadata.finalizers?.includes(CD_FINALIZER)) return
    // Deleting pulls the chart first (compositiondefinitions.go:549): the registry must answer.
    const t = await this.target(cd)
    await this.setStatus(cd, {}, ready('False', 'Deleting'))
    const orphan = cd.metadata.annotations?.[ANN_DELETION_POLICY] === 'orphan'
    const crd = await this.ctx.rest.getOrNull(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${t.crdName}`)
    const served = ((crd?.spec as { versions?: { name: string; served: boolean }[] } | undefined)?.versions ?? []).some(
      (v) => v.name === t.version && v.served,
    )
    if (served && !orphan) {
      // Which CDs share the kind is read from their status, this one's included (getters.go:82-126).
      const statuses = [...this.cds.items.values()].map((o) => (o.status ?? {}) as CDStatus)
      const ofKind = statuses.filter((s) => s.kind === t.kind && s.apiVersion?.split('/')[0] === COMPOSITION_GROUP)
      if (ofKind.filter((s) => s.apiVersion === `${COMPOSITION_GROUP}/${t.version}`).length === 1) {
        // The only CD of that kind and version takes its Compositions with it.
        const left = await this.compositionsAt(t.plural, t.version)
        for (const item of left.filter((i) => !i.metadata.deletionTimestamp))
          await this.ctx.rest.delete(
            `/apis/${COMPOSITION_GROUP}/${t.version}/namespaces/${item.metadata.namespace}/${t.plural}/${item.metadata.name}`,
          )
        if (left.length > 0) {
          await this.setStatus(
            cd,
            {},
            ready('False', 'Deleting'),
            synced(
              'False',
              'ReconcileError',
              'observe failed: error undeploying CompositionDefinition: waiting for composition deletion',
            ),
          )
          this.enqueue(cd, 2000)
          return
        }
      }
      await this.deleteBundle(ns, t.base)
      if (ofKind.length <= 1)
        await this.ctx.rest.delete(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${t.crdName}`)
    }
    const fresh = await this.ctx.rest.get(cdPath(ns, cd.metadata.name))
    const finalizers = (fresh.metadata.finalizers ?? []).filter(
      (f) => f !== CD_FINALIZER && f !== STILL_EXIST_FINALIZER,
    )
    await this.ctx.rest.mergePatch(cdPath(ns, cd.metadata.name), {
      metadata: { finalizers, resourceVersion: fresh.metadata.resourceVersion },
    })
  }

  /** Compositions of a generated kind at one version (through the version's own GVR), [] when it is not served. */
  private async compositionsAt(plural: string, version: string): Promise<KObject[]> {
    try {
      return await this.ctx.rest.list(
        `/apis/${COMPOSITION_GROUP}/${version}/${plural}`,
        `${LABEL_COMPOSITION_VERSION}=${version}`,
      )
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return []
      throw err
    }
  }

  /** Gen S: the still-exist finalizer is on the CD exactly while Compositions of its version exist. */
  /**
   * The cdc Deployment's spec is part of what core-provider 0.26.1 compares at every observe (deploy.Lookup hashes
   * it; only the restart annotation is left out): one scaled by hand is applied again from its template, with the
   * chart's cdc.replicaCount, 1. Modelled for both generations (the contract is silent).
   */
  private async restoreBundleReplicas(bundle: KObject): Promise<void> {
    if ((bundle.spec as { replicas?: number } | undefined)?.replicas === 1) return
    const { namespace, name } = bundle.metadata
    await this.ctx.rest.mergePatch(`/apis/apps/v1/namespaces/${namespace}/deployments/${name}`, {
      spec: { replicas: 1 },
    })
    this.ctx.log(`core-provider: ${namespace}/${name} applied again from its template (replicas 1)`)
  }

  private async holdWhileCompositionsExist(cd: KObject, t: Awaited<ReturnType<CoreProvider['target']>>): Promise<void> {
    if (!this.ctx.profile().stillExistFinalizer) return
    const exist = (await this.compositionsAt(t.plural, t.version)).length > 0
    const has = cd.metadata.finalizers?.includes(STILL_EXIST_FINALIZER) ?? false
    if (exist === has) return
    const finalizers = exist
      ? [...(cd.metadata.finalizers ?? []), STILL_EXIST_FINALIZER]
      : (cd.metadata.finalizers ?? []).filter((f) => f !== STILL_EXIST_FINALIZER)
    await this.ctx.rest.mergePatch(cdPath(cd.metadata.namespace!, cd.metadata.name), {
      metadata: { finalizers, resourceVersion: cd.metadata.resourceVersion },
    })
  }

  /**
   * Gen N: a served version that no CD (status or pinned chart version) and no Composition label references is
   * no longer served (monorepo compositiondefinitions.go:444-486).
   */
  private async pruneStaleVersions(crd: KObject, current: string): Promise<void> {
    const spec = crd.spec as { names: { kind: string; plural: string }; versions: { name: string; served: boolean }[] }
    const referenced = new Set([current])
    for (const other of this.cds.items.values()) {
      const st = (other.status ?? {}) as CDStatus
      if (st.kind === spec.names.kind && st.apiVersion) referenced.add(st.apiVersion.split('/')[1]!)
      const pinned = (other.spec as { chart?: { version?: string } } | undefined)?.chart?.version
      if (st.kind === spec.names.kind && pinned) referenced.add(dashedVersion(pinned))
    }
    for (const item of await this.compositionsAt(spec.names.plural, current).catch(() => [])) {
      const label = item.metadata.labels?.[LABEL_COMPOSITION_VERSION]
      if (label) referenced.add(label)
    }
    const stale = spec.versions.filter((v) => v.served && v.name !== 'vacuum' && !referenced.has(v.name))
    if (stale.length === 0) return
    this.ctx.log(
      `core-provider: pruning served versions ${stale.map((v) => v.name).join(', ')} of ${crd.metadata.name}`,
    )
    const versions = spec.versions.map((v) => (stale.includes(v) ? { ...v, served: false } : v))
    await this.ctx.rest.put(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`, {
      ...crd,
      spec: { ...spec, versions },
    })
  }
}

function digestOf(...parts: string[]): string {
  let h = 0
  for (const ch of parts.join('|')) h = (h * 31 + ch.charCodeAt(0)) >>> 0
  return h.toString(16).padStart(8, '0')
}
