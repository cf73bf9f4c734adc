// "Ready means running": a component the cdc calls Ready is ready for the CLI only when its release's workloads
// are available and, for the consumer, its peers' URLs are wired; otherwise status says what it waits for.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type KObj } from '../../src/platform/kobj.js'
import { type Observed } from '../../src/platform/objects.js'
import { componentState } from '../../src/platform/component-state.js'
import { platformState } from '../../src/platform/state.js'
import { renderStatus } from '../../src/ui/output.js'
import type { Component } from '../../src/platform/components.js'
import { notRunning, podTrouble, specApplied } from '../../src/platform/workloads.js'
import { chartPeerAddress, consumerWiring, serviceOf } from '../../src/platform/wiring.js'

const NS = 'krateo-system'
const ready = {
  conditions: [
    { type: 'Ready', status: 'True', reason: 'Available' },
    { type: 'Synced', status: 'True', reason: 'ReconcileSuccess' },
  ],
}
const managed = (...refs: [string, string][]) =>
  refs.map(([resource, name]) => ({ apiVersion: 'apps/v1', resource, name, namespace: NS }))
const composition = (name: string, refs: [string, string][], spec: Record<string, unknown> = {}): KObj => ({
  metadata: { name, namespace: NS, creationTimestamp: '2026-01-01T00:00:00Z' },
  spec,
  status: { ...ready, managed: managed(...refs), helmChartVersion: '1.0.0' },
})
const deployment = (name: string, available: number, extra: Record<string, unknown> = {}): KObj => ({
  kind: 'Deployment',
  metadata: { name, namespace: NS, generation: 2 },
  spec: { replicas: 1 },
  status: { observedGeneration: 2, updatedReplicas: 1, availableReplicas: available, ...extra },
})
const pod = (owner: string, status: Record<string, unknown>): KObj => ({
  kind: 'Pod',
  metadata: {
    name: `${owner}-abc12-xyz`,
    namespace: NS,
    ownerReferences: [{ kind: 'ReplicaSet', name: `${owner}-abc12` }],
  } as KObj['metadata'],
  status,
})
const waiting = (reason: string, message?: string, extra: Record<string, unknown> = {}) => ({
  phase: 'Pending',
  containerStatuses: [
    { name: 'app', ready: false, restartCount: 0, state: { waiting: { reason, message } }, ...extra },
  ],
})

const authn: Component = {
  name: 'authn',
  kind: 'Authn',
  version: '1.0.0',
  deps: [],
  expose: true,
  svcMatch: 'authn',
  configKeys: ['AUTHN_API_BASE_URL'],
}
const frontend: Component = {
  name: 'frontend',
  kind: 'Frontend',
  version: '1.0.0',
  deps: ['authn'],
  expose: true,
  svcMatch: 'frontend',
  consumer: true,
}
const lb = (name: string, ingress?: { ip?: string; hostname?: string }, type = 'LoadBalancer'): KObj => ({
  metadata: { name, namespace: NS },
  spec: { type, ports: [{ port: 8082, nodePort: 31000 }] },
  status: { loadBalancer: { ingress: ingress ? [ingress] : [] } },
})

function observed(over: Partial<Observed>): Observed {
  const cd = (name: string) => ({
    metadata: { name },
    spec: { chart: { version: '1.0.0' } },
    status: { ...ready, resource: `${name}s` },
  })
  return {
    namespace: NS,
    cdCrd: true,
    bootstrapped: true,
    installer: { metadata: { name: 'installer' }, spec: { components: [authn, frontend] }, status: ready },
    cds: new Map([
      ['installer', cd('installer')],
      ['authn', cd('authn')],
      ['frontend', cd('frontend')],
    ]),
    crds: new Map(),
    compositions: new Map(),
    services: [],
    workloads: [],
    pods: [],
    now: Date.now(),
    ...over,
  }
}

describe('ready means running', () => {
  it('names the pod trouble a user acts on', () => {
    assert.equal(
      podTrouble(pod('a', waiting('ImagePullBackOff', 'Back-off pulling image "x"'))),
      'container app cannot pull its image (ImagePullBackOff: Back-off pulling image "x")',
    )
    assert.equal(podTrouble(pod('a', waiting('ContainerCreating'))), 'container app is starting (pulling its image)')
    assert.equal(
      podTrouble(
        pod('a', {
          ...waiting('CrashLoopBackOff', 'back-off', {
            restartCount: 5,
            lastState: { terminated: { exitCode: 1, message: 'db unreachable' } },
          }),
          phase: 'Running',
        }),
      ),
      'container app is crash-looping (5 restarts): db unreachable',
    )
    assert.equal(podTrouble(pod('a', { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] })), null)
  })

  it('a workload not rolled out to its new spec is not running, whatever its counts say', () => {
    const comp = composition('authn', [['deployments', 'authn']])
    assert.deepEqual(notRunning(comp, [deployment('authn', 1)], []), [])
    assert.deepEqual(notRunning(comp, [deployment('authn', 1, { observedGeneration: 1 })], []), [
      'Deployment authn: rollout not started',
    ])
    assert.deepEqual(
      notRunning(comp, [deployment('authn', 1, { replicas: 2, updatedReplicas: 1 })], []),
      ['Deployment authn: 1 old replica(s) not replaced yet'],
      'mid-rollout the old pod keeps availableReplicas up; the new one is not running yet',
    )
    assert.deepEqual(notRunning(comp, [], []), ['Deployment authn not found'])
    assert.deepEqual(notRunning(comp, [deployment('authn', 0)], [pod('authn', waiting('ErrImagePull'))]), [
      'Deployment authn: 0/1 available; container app cannot pull its image (ErrImagePull)',
    ])
  })

  it("the cdc's Ready is only 'starting' until the workloads are available", () => {
    const comp = composition('authn', [['deployments', 'authn']])
    const starting = componentState(
      authn,
      observed({
        compositions: new Map([['authn', comp]]),
        workloads: [deployment('authn', 0)],
        pods: [pod('authn', waiting('ContainerCreating'))],
      }),
      undefined,
    )
    assert.equal(starting.stage, 'starting')
    assert.match(starting.detail, /pulling its image/)
    assert.equal(
      componentState(
        authn,
        observed({ compositions: new Map([['authn', comp]]), workloads: [deployment('authn', 1)] }),
        undefined,
      ).stage,
      'ready',
    )
  })

  it('the consumer waits for every enabled peer URL; the chart wires LoadBalancer IPs only', () => {
    const spec = (config: Record<string, string>) => ({ config })
    const wired = (services: KObj[], config: Record<string, string>) =>
      consumerWiring([authn, frontend], () => true, composition('frontend', [], spec(config)), services)
    assert.equal(wired([lb('authn')], {}).pending[0]!.why, 'waiting for the LoadBalancer IP of authn')
    const ipCame = wired([lb('authn', { ip: '198.51.100.10' })], {})
    assert.equal(ipCame.pending[0]!.renderable, true, 'the IP exists: the next render writes it')
    assert.deepEqual(
      wired([lb('authn', { ip: '198.51.100.10' })], { AUTHN_API_BASE_URL: 'http://198.51.100.10:8082' }),
      { pending: [], never: [] },
    )
    assert.match(
      wired([lb('authn', undefined, 'NodePort')], {}).never[0]!.why,
      /exposed as NodePort; the chart wires LoadBalancer IPs only/,
    )
    assert.match(wired([lb('authn', { hostname: 'a.elb.example' })], {}).never[0]!.why, /hostname only/)
  })

  it("finds a component's own Service among the cdc bundles' Services that carry the same word, in any order", () => {
    const bundle = (name: string): KObj => ({
      metadata: { name, namespace: NS },
      spec: { type: 'ClusterIP', ports: [{ port: 8443 }] },
      status: {},
    })
    const services = [
      bundle('frontends-v1-0-0-controller-service'),
      bundle('frontendcrds-v1-0-0-controller-service'),
      lb('frontend'),
      lb('authn', { ip: '198.51.100.10' }),
    ]
    const comp = composition('frontend', [['services', 'frontend']], {
      config: { AUTHN_API_BASE_URL: 'http://198.51.100.10:8082' },
    })
    assert.equal(serviceOf(frontend, services, comp)?.metadata.name, 'frontend')
    assert.equal(
      serviceOf(frontend, [...services].reverse(), comp)?.metadata.name,
      'frontend',
      'watch order does not matter',
    )
    const state = componentState(
      frontend,
      observed({
        compositions: new Map([
          ['frontend', comp],
          ['authn', composition('authn', [['services', 'authn']])],
        ]),
        services: [...services].reverse(),
      }),
      undefined,
      [authn, frontend],
    )
    assert.equal(state.stage, 'wiring', 'the portal has no address while its own load balancer has none')
    assert.match(state.detail, /LoadBalancer IP of its own Service frontend/)
  })

  it("predicts the peer URL by the chart's rule: LoadBalancer Services containing the name, the last IP in name order", () => {
    const services = [
      lb('snowplow-authn-agent', { ip: '198.51.100.20' }),
      lb('authn', { ip: '198.51.100.10' }),
      lb('authn-x', undefined, 'NodePort'),
    ]
    assert.deepEqual(chartPeerAddress(authn, services), { ip: '198.51.100.20', port: 8082 })
    assert.equal(chartPeerAddress(authn, [lb('authn')]), null)
  })

  it('a NodePort platform is Ready but has no portal URL, and says why and what to do', () => {
    const comps = new Map([
      ['authn', composition('authn', [])],
      ['frontend', composition('frontend', [], { config: {} })],
    ])
    const services = [lb('authn', undefined, 'NodePort'), lb('frontend', undefined, 'NodePort')]
    const state = platformState(observed({ compositions: comps, services, nodeIP: '10.0.0.1' }))
    assert.equal(state.phase, 'Ready')
    assert.equal(state.portalUrl, null, 'never a false portal URL')
    assert.match(state.notes[0]!, /the portal is not wired.*--exposure LoadBalancer/)
    assert.match(
      state.portalGap!.why,
      /^the portal is not wired: the chart sets frontend's AUTHN_API_BASE_URL from LoadBalancer IPs only \(authn is exposed as NodePort/,
    )
    assert.match(state.portalGap!.hint, /--exposure LoadBalancer/, 'check shows this as its hint')
    assert.equal(renderStatus(state).match(/the portal is not wired/g)!.length, 1, 'said once, in the notes')
    const lbState = platformState(
      observed({
        compositions: new Map([
          ['authn', composition('authn', [])],
          ['frontend', composition('frontend', [], { config: {} })],
        ]),
        services: [lb('authn', { ip: '198.51.100.10' }), lb('frontend', { ip: '198.51.100.11' })],
      }),
    )
    assert.equal(lbState.components.find((c) => c.name === 'frontend')!.stage, 'wiring')
    assert.equal(lbState.components.find((c) => c.name === 'frontend')!.awaitsRender, true)
    assert.notEqual(lbState.phase, 'Ready')
  })

  it('says why there is no portal when the consumer is off or has no address yet', () => {
    const off = platformState(
      observed({
        installer: {
          metadata: { name: 'installer' },
          spec: { components: [authn, { ...frontend, feature: 'portal' }], features: { portal: false } },
          status: ready,
        },
      }),
    )
    assert.equal(off.portalUrl, null)
    assert.deepEqual(off.portalGap, {
      why: 'frontend is turned off',
      hint: `turn it on with: krateo-installer upgrade -n ${NS} --feature portal=true`,
    })
    const pending = platformState(
      observed({
        compositions: new Map([
          ['authn', composition('authn', [])],
          ['frontend', composition('frontend', [], { config: {} })],
        ]),
        services: [lb('authn', { ip: '198.51.100.10' }), lb('frontend')],
      }),
    )
    assert.equal(pending.portalGap!.why, 'frontend has no address yet (LoadBalancer)')
    assert.match(renderStatus(pending), /Portal: none yet: frontend has no address yet \(LoadBalancer\)/)
    const wired = platformState(
      observed({
        compositions: new Map([
          ['authn', composition('authn', [])],
          ['frontend', composition('frontend', [], { config: { AUTHN_API_BASE_URL: 'http://198.51.100.10:8082' } })],
        ]),
        services: [lb('authn', { ip: '198.51.100.10' }), lb('frontend', { ip: '198.51.100.11' })],
      }),
    )
    assert.equal(wired.portalUrl, 'http://198.51.100.11:8082')
    assert.equal(wired.portalGap, null)
  })
})

describe('values applied', () => {
  const withFields = (spec: string, status: string) =>
    ({
      metadata: {
        name: 'frontend',
        managedFields: [
          { manager: 'helm', operation: 'Update', time: spec, fieldsV1: { 'f:spec': {} } },
          { manager: 'cdc', operation: 'Update', subresource: 'status', time: status, fieldsV1: { 'f:status': {} } },
        ],
      },
    }) as unknown as KObj
  it('a component whose values changed after its cdc last reported is not running them yet', () => {
    assert.equal(specApplied(withFields('2026-01-01T00:00:10Z', '2026-01-01T00:00:05Z')), false)
    assert.equal(specApplied(withFields('2026-01-01T00:00:10Z', '2026-01-01T00:00:10Z')), true)
    assert.equal(specApplied({ metadata: { name: 'x' } }), true, 'nothing to tell by')
  })
})
