// Simulated controllers of the kinds that make teardown order matter: the authn, frontend and snowplow
// kinds (shipped by the -crd charts, instances shipped by portal) and oasgen's RestDefinitions. Each adds
// its finalizer and clears it only while its provider's workload runs; oasgen-provider also generates a
// CRD per RestDefinition (`*.hyperdx.krateo.io`), which nothing deletes.
import { Informer, type KObject } from './rest.js'
import { EngineContext } from './context.js'
import { pluralFromKind } from './naming.js'

/** API group of the dependent kinds -> the component (release) whose workload finalizes them. */
export const FINALIZING_PROVIDERS: Record<string, string> = {
  'basic.authn.krateo.io': 'authn',
  'templates.krateo.io': 'snowplow',
  'widgets.templates.krateo.io': 'frontend',
  'ogen.krateo.io': 'oasgen-provider',
}

export class DependentControllers {
  private informers = new Map<string, { informer: Informer; group: string; version: string; plural: string }>()

  constructor(private ctx: EngineContext) {
    ctx.onDeployment((d, old) => {
      const group = Object.entries(FINALIZING_PROVIDERS).find(([, provider]) => provider === d.metadata.name)?.[0]
      if (group && EngineContext.available(d) && !EngineContext.available(old)) this.enqueueGroup(group)
    })
  }

  start(): void {
    const tick = () => {
      this.sync()
      setTimeout(tick, 500)
    }
    tick()
  }

  private providerAlive(group: string): boolean {
    const provider = FINALIZING_PROVIDERS[group]!
    for (const d of this.ctx.deployments.items.values())
      if (d.metadata.name === provider && EngineContext.available(d)) return true
    return false
  }

  private sync(): void {
    const seen = new Set<string>()
    for (const crd of this.ctx.crds.items.values()) {
      const spec = crd.spec as {
        group: string
        names: { plural: string }
        versions: { name: string; storage: boolean }[]
      }
      if (!FINALIZING_PROVIDERS[spec.group] || crd.metadata.deletionTimestamp) continue
      seen.add(crd.metadata.name)
      if (this.informers.has(crd.metadata.name)) continue
      const version = spec.versions.find((v) => v.storage)?.name ?? spec.versions[0]!.name
      const entry = {
        group: spec.group,
        version,
        plural: spec.names.plural,
        informer: undefined as unknown as Informer,
      }
      entry.informer = new Informer(this.ctx.rest, `/apis/${spec.group}/${version}/${spec.names.plural}`, (ev, obj) => {
        if (ev !== 'delete') this.enqueue(entry, obj)
      })
      this.informers.set(crd.metadata.name, entry)
      entry.informer.start()
    }
    for (const [name, entry] of this.informers) {
      if (!seen.has(name)) {
        entry.informer.stop()
        this.informers.delete(name)
      }
    }
  }

  private enqueueGroup(group: string): void {
    for (const entry of this.informers.values()) {
      if (entry.group === group) for (const obj of entry.informer.items.values()) this.enqueue(entry, obj)
    }
  }

  private enqueue(entry: { group: string; version: string; plural: string }, obj: KObject): void {
    const path = `/apis/${entry.group}/${entry.version}/namespaces/${obj.metadata.namespace}/${entry.plural}/${obj.metadata.name}`
    this.ctx.queue.add(`dep/${path}`, () => this.reconcile(entry.group, path))
  }

  private async reconcile(group: string, path: string): Promise<void> {
    if (!this.providerAlive(group)) return
    const obj = await this.ctx.rest.getOrNull(path)
    if (!obj) return
    const finalizer = `${group}/finalizer`
    const has = obj.metadata.finalizers?.includes(finalizer)
    if (obj.metadata.deletionTimestamp) {
      if (has)
        await this.ctx.rest.mergePatch(path, {
          metadata: {
            finalizers: obj.metadata.finalizers!.filter((f) => f !== finalizer),
            resourceVersion: obj.metadata.resourceVersion,
          },
        })
      return
    }
    if (!has)
      await this.ctx.rest.mergePatch(path, {
        metadata: { finalizers: [...(obj.metadata.finalizers ?? []), finalizer] },
      })
    if (group === 'ogen.krateo.io') await this.generateRestCRD(obj)
  }

  private async generateRestCRD(rd: KObject): Promise<void> {
    const spec = rd.spec as { resourceGroup?: string; resource?: { kind?: string } }
    if (!spec.resourceGroup || !spec.resource?.kind) return
    const kind = spec.resource.kind
    const plural = pluralFromKind(kind)
    await this.ctx.rest.createOrIgnore('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: `${plural}.${spec.resourceGroup}`, labels: { 'krateo.io/generated-by': 'oasgen-provider' } },
      spec: {
        group: spec.resourceGroup,
        scope: 'Namespaced',
        names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
        versions: [
          {
            name: 'v1alpha1',
            served: true,
            storage: true,
            schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
          },
        ],
      },
    })
  }
}
