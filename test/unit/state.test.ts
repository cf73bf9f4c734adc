import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type KObj } from '../../src/platform/kobj.js'
import { type Observed, UPGRADE_ANNOTATION, isStuckCreate } from '../../src/platform/objects.js'
import { componentState } from '../../src/platform/component-state.js'
import { platformState } from '../../src/platform/state.js'
import type { Component } from '../../src/platform/components.js'

const T = '2026-01-01T00:00:00Z'
const conds = (
  ready: string,
  reason: string,
  message?: string,
  synced: [string, string, string?] = ['True', 'ReconcileSuccess'],
) => ({
  conditions: [
    { type: 'Ready', status: ready, reason, message },
    { type: 'Synced', status: synced[0], reason: synced[1], message: synced[2] },
  ],
})
const components: Component[] = [
  { name: 'authn-crd', kind: 'AuthnCrd', version: '0.4.0', deps: [], feature: 'platform' },
  {
    name: 'authn',
    kind: 'Authn',
    version: '0.22.0',
    deps: ['authn-crd'],
    feature: 'platform',
    expose: true,
    svcMatch: 'authn',
  },
  { name: 'kagent', kind: 'Kagent', version: '0.6.2', deps: [], feature: 'agents' },
]
const cd = (name: string, resource: string, ready = true): KObj => ({
  metadata: { name },
  spec: {},
  status: {
    resource,
    apiVersion: 'composition.krateo.io/v1',
    ...(ready ? conds('True', 'Available') : conds('False', 'Creating')),
  },
})
const crd = (plural: string, version: string): [string, KObj] => [
  `${plural}.composition.krateo.io`,
  { metadata: { name: `${plural}.composition.krateo.io` }, spec: { versions: [{ name: version, served: true }] } },
]
const comp = (name: string, status: Record<string, unknown>, extra: Partial<KObj['metadata']> = {}): KObj => ({
  metadata: { name, creationTimestamp: T, ...extra },
  status,
})

function observed(over: Partial<Observed> = {}): Observed {
  return {
    namespace: 'krateo-system',
    cdCrd: true,
    bootstrapped: true,
    installer: {
      metadata: { name: 'installer' },
      spec: { components, features: { platform: true, agents: false } },
      status: conds('True', 'Available'),
    },
    cds: new Map([
      [
        'installer',
        { metadata: { name: 'installer' }, spec: { chart: { version: '0.2.53' } }, status: conds('True', 'Available') },
      ],
      ['authn-crd', cd('authn-crd', 'authncrds')],
      ['authn', cd('authn', 'authns')],
    ]),
    crds: new Map([crd('authncrds', 'v0-4-0'), crd('authns', 'v0-22-0')]),
    compositions: new Map(),
    services: [],
    now: Date.parse(T) + 90_000,
    ...over,
  }
}

describe('state derivation', () => {
  it('is NotInstalled on a bare cluster and Bootstrapping once the bootstrap release rendered', () => {
    assert.equal(
      platformState(observed({ installer: null, cdCrd: false, bootstrapped: false, cds: new Map() })).phase,
      'NotInstalled',
    )
    assert.equal(platformState(observed({ installer: null })).phase, 'Bootstrapping')
    assert.equal(
      platformState(observed({ installer: null, bootstrapped: false, cds: new Map() })).phase,
      'NotInstalled',
      'a leftover CD CRD is residue',
    )
    const blueprint: KObj = { metadata: { name: 'fireworksapp' }, spec: {} }
    assert.equal(
      platformState(observed({ installer: null, bootstrapped: false, cds: new Map([['fireworksapp', blueprint]]) }))
        .phase,
      'NotInstalled',
      "a team's own definition is no platform",
    )
    const labelled: KObj = {
      metadata: { name: 'fireworksapp', labels: { 'app.kubernetes.io/managed-by': 'krateo-installer' } },
      spec: {},
    }
    assert.equal(
      platformState(observed({ installer: null, bootstrapped: false, cds: new Map([['fireworksapp', labelled]]) }))
        .phase,
      'NotInstalled',
      'nor one labelled like ours (anyone with edit rights in the namespace can set a label)',
    )
    const ours: KObj = {
      metadata: { name: 'installer', labels: { 'app.kubernetes.io/managed-by': 'krateo-installer' } },
      spec: {},
    }
    assert.equal(
      platformState(observed({ installer: null, bootstrapped: false, cds: new Map([['installer', ours]]) })).phase,
      'Bootstrapping',
    )
  })
  it('walks a component through its stages', () => {
    const features = { platform: true }
    const authn = components[1]!
    assert.equal(componentState(authn, observed({ cds: new Map() }), features).stage, 'pending-definition')
    assert.equal(componentState(authn, observed({ crds: new Map() }), features).stage, 'definition-registered')
    const waiting = componentState(authn, observed(), features)
    assert.equal(waiting.stage, 'waiting-deps')
    assert.deepEqual(waiting.waitingFor, ['authn-crd'])
    const depReady = observed({ compositions: new Map([['authn-crd', comp('authn-crd', conds('True', 'Available'))]]) })
    assert.equal(componentState(authn, depReady, features).stage, 'crd-served')
    depReady.compositions.set(
      'authn',
      comp('authn', conds('False', 'Unavailable', 'waiting for Deployment krateo-system/authn')),
    )
    const deploying = componentState(authn, depReady, features)
    assert.equal(deploying.stage, 'deploying')
    assert.equal(deploying.detail, 'Unavailable: waiting for Deployment krateo-system/authn')
    assert.equal(deploying.ageSeconds, 90)
    depReady.compositions.set(
      'authn',
      comp('authn', conds('False', 'Unavailable', undefined, ['False', 'ReconcileError', 'observe failed: boom'])),
    )
    assert.equal(componentState(authn, depReady, features).stage, 'error')
    depReady.compositions.set(
      'authn',
      comp('authn', conds('True', 'Available'), {
        deletionTimestamp: T,
        finalizers: ['composition.krateo.io/finalizer'],
      }),
    )
    assert.equal(componentState(authn, depReady, features).stage, 'deleting')
  })
  it('is Ready only when every enabled component and the Installer are Ready; disabled ones do not count', () => {
    const o = observed({
      compositions: new Map([
        ['authn-crd', comp('authn-crd', conds('True', 'Available'))],
        ['authn', comp('authn', conds('True', 'Available'))],
      ]),
    })
    const s = platformState(o)
    assert.equal(s.phase, 'Ready')
    assert.deepEqual([s.ready, s.total], [2, 2])
    assert.equal(s.components.find((c) => c.name === 'kagent')!.stage, 'disabled')
    o.compositions.set('authn', comp('authn', conds('False', 'Unavailable')))
    assert.equal(platformState(o).phase, 'Reconciling')
  })
  it("keeps a switched-off component draining until the installer's render drops its own definition; a team's of that name leaves it disabled", () => {
    const ready = new Map([
      ['authn-crd', comp('authn-crd', conds('True', 'Available'))],
      ['authn', comp('authn', conds('True', 'Available'))],
    ])
    const kagentCd = (metadata: Partial<KObj['metadata']>): KObj => ({
      ...cd('kagent', 'kagents'),
      metadata: { name: 'kagent', namespace: 'krateo-system', ...metadata },
    })
    const withCd = (kagent: KObj) => {
      const o = observed({ compositions: new Map(ready) })
      o.cds.set('kagent', kagent)
      return platformState(o)
    }
    const rendered = { labels: { 'app.kubernetes.io/managed-by': 'krateo-installer' } }
    const lingering = withCd(kagentCd(rendered))
    const kagent = lingering.components.find((c) => c.name === 'kagent')!
    assert.equal(kagent.stage, 'retiring')
    assert.ok(kagent.awaitsRender, 'a nudge brings the render that drops it')
    assert.notEqual(lingering.phase, 'Ready')
    const going = withCd(
      kagentCd({ ...rendered, deletionTimestamp: T, finalizers: ['finalizer.managedresource.krateo.io'] }),
    )
    assert.equal(going.components.find((c) => c.name === 'kagent')!.stage, 'deleting')
    const theirs = withCd(kagentCd({ labels: { team: 'b' } }))
    assert.equal(theirs.components.find((c) => c.name === 'kagent')!.stage, 'disabled')
    assert.equal(theirs.phase, 'Ready')
  })
  it('is Degraded on a ReconcileError and Stuck on a lost create result', () => {
    const errored = observed({
      compositions: new Map([
        [
          'authn-crd',
          comp('authn-crd', conds('False', 'Unavailable', undefined, ['False', 'ReconcileError', 'observe failed: x'])),
        ],
      ]),
    })
    const s = platformState(errored)
    assert.equal(s.phase, 'Degraded')
    assert.deepEqual(s.problems, ['authn-crd: observe failed: x'])
    const blocked =
      'create failed: cannot determine creation result - remove the krateo.io/external-create-pending annotation if it is safe to proceed'
    const stuckCD: KObj = {
      metadata: {
        name: 'authn',
        annotations: {
          'krateo.io/external-create-pending': '2026-01-01T00:00:05Z',
          'krateo.io/external-create-succeeded': T,
        },
      },
      status: conds('False', 'Creating', undefined, ['False', 'ReconcileError', blocked]),
    }
    assert.equal(isStuckCreate(stuckCD), true)
    assert.equal(platformState(observed({ cds: new Map([...observed().cds, ['authn', stuckCD]]) })).phase, 'Stuck')
    // A pending mark older than the recorded success is not stuck.
    assert.equal(
      isStuckCreate({
        ...stuckCD,
        metadata: {
          ...stuckCD.metadata,
          annotations: {
            'krateo.io/external-create-pending': T,
            'krateo.io/external-create-succeeded': '2026-01-01T00:00:05Z',
          },
        },
      }),
      false,
    )
  })
  it('is not Degraded by a passing API answer (429, 503) the engine retries, until it lasts two minutes', () => {
    const msg = 'observe failed: GET /apis/composition.krateo.io/v0-22-1/authns: HTTP 429: storage is (re)initializing'
    const failing = (since: number) =>
      observed({
        compositions: new Map([
          [
            'authn-crd',
            comp('authn-crd', {
              conditions: [
                { type: 'Ready', status: 'False', reason: 'Unavailable' },
                {
                  type: 'Synced',
                  status: 'False',
                  reason: 'ReconcileError',
                  message: msg,
                  lastTransitionTime: new Date(since).toISOString(),
                },
              ],
            }),
          ],
        ]),
      })
    const now = Date.parse(T) + 90_000
    const fresh = platformState(failing(now - 10_000))
    assert.equal(fresh.phase, 'Reconciling')
    assert.deepEqual(fresh.problems, [])
    assert.match(
      fresh.components.find((c) => c.name === 'authn-crd')!.detail,
      /^its cdc retries after a passing API error: .*HTTP 429/,
    )
    const lasting = platformState(failing(now - 121_000))
    assert.equal(lasting.phase, 'Degraded')
    assert.deepEqual(lasting.problems, [`authn-crd: ${msg}`])
  })
  it('is not Degraded by a write conflict the real cdc retries (its status write raced another change)', () => {
    const msg =
      'observe failed: Operation cannot be fulfilled on installers.composition.krateo.io "installer": the object has been modified; please apply your changes to the latest version and try again'
    const o = observed()
    o.now = Date.parse(T) + 30_000
    o.installer!.status = conds('True', 'Available', undefined, ['False', 'ReconcileError', msg])
    ;(o.installer!.status.conditions as { lastTransitionTime?: string }[])[1]!.lastTransitionTime = new Date(
      o.now - 5_000,
    ).toISOString()
    assert.deepEqual(platformState(o).problems, [])
    ;(o.installer!.status.conditions as { lastTransitionTime?: string }[])[1]!.lastTransitionTime = new Date(
      o.now - 121_000,
    ).toISOString()
    assert.deepEqual(platformState(o).problems, [`Installer krateo-system/installer: ReconcileError: ${msg}`])
  })
  it('is Draining, not Degraded, while uninstall has paused the Installer', () => {
    const o = observed({
      compositions: new Map([['authn-crd', comp('authn-crd', conds('True', 'Available'), { deletionTimestamp: T })]]),
    })
    o.installer!.status = conds('True', 'Available', undefined, ['False', 'ReconcilePaused'])
    const s = platformState(o)
    assert.equal(s.phase, 'Draining')
    assert.deepEqual(s.problems, [])
  })
  it('a pause taken back that its cdc has not observed yet is not Draining', () => {
    const o = observed({})
    o.installer!.status = conds('True', 'Available', undefined, ['False', 'ReconcilePaused'])
    o.installer!.metadata.annotations = { 'krateo.io/paused': 'true' }
    assert.equal(platformState(o).phase, 'Draining')
    o.installer!.metadata.annotations = {}
    assert.notEqual(platformState(o).phase, 'Draining')
  })
  it('derives endpoints from LoadBalancer ingress or a NodePort on the node address', () => {
    const lb: KObj = {
      metadata: { name: 'authn' },
      spec: { type: 'LoadBalancer', ports: [{ port: 8082 }] },
      status: { loadBalancer: { ingress: [{ ip: '198.51.100.10' }] } },
    }
    assert.deepEqual(platformState(observed({ services: [lb] })).endpoints, [
      { component: 'authn', type: 'LoadBalancer', url: 'http://198.51.100.10:8082', service: 'authn' },
    ])
    const np: KObj = {
      metadata: { name: 'authn' },
      spec: { type: 'NodePort', ports: [{ port: 8082, nodePort: 30082 }] },
    }
    assert.equal(
      platformState(observed({ services: [np], nodeIP: '10.0.0.1' })).endpoints[0]!.url,
      'http://10.0.0.1:30082',
    )
  })
  it('holds a component Ready at an old chart version as upgrading, and the platform as Upgrading', () => {
    const ready = conds('True', 'Available')
    const o = observed({
      compositions: new Map([
        ['authn-crd', comp('authn-crd', { ...ready, helmChartVersion: '0.4.0' })],
        ['authn', comp('authn', { ...ready, helmChartVersion: '0.21.9' })],
      ]),
    })
    const authn = componentState(components[1]!, o, { platform: true })
    assert.equal(authn.stage, 'upgrading')
    assert.equal(authn.detail, 'released at 0.21.9, moving to 0.22.0')
    const s = platformState(o)
    assert.equal(s.phase, 'Upgrading')
    assert.deepEqual([s.ready, s.total], [1, 2])
    o.cds.get('authn')!.spec = { chart: { version: '0.21.9' } }
    assert.equal(
      componentState(components[1]!, o, { platform: true }).detail,
      'its CompositionDefinition is at 0.21.9, moving to 0.22.0',
    )
    o.cds.get('authn')!.spec = { chart: { version: '0.22.0' } }
    o.compositions.set('authn', comp('authn', { ...ready, helmChartVersion: '0.22.0' }))
    assert.equal(platformState(o).phase, 'Ready')
    o.installer!.metadata.annotations = { [UPGRADE_ANNOTATION]: '0.2.54', 'krateo.io/paused': 'true' }
    assert.equal(platformState(o).phase, 'Upgrading', 'paused by upgrade is not a drain')
  })

  it('keeps going when one kind cannot be read, and names the cause as a problem', () => {
    const st = platformState(
      observed({
        readErrors: [
          'authn: cannot read its Composition (authns.composition.krateo.io/v0-22-0): HTTP 500: conversion webhook for composition.krateo.io/v0-22-0, Kind=Authn failed (core-provider, which serves the conversion, is not answering)',
        ],
      }),
    )
    assert.equal(st.phase, 'Degraded')
    assert.match(
      st.problems.at(-1)!,
      /^authn: cannot read its Composition .*core-provider, which serves the conversion, is not answering/,
    )
  })
  it('says who paused the Installer and what resumes it', () => {
    const o = observed()
    o.installer!.metadata.annotations = {
      'krateo.io/paused': 'true',
      'krateo-installer/paused-by': 'krateo-installer uninstall at 2026-01-01T00:00:00Z',
    }
    assert.equal(
      platformState(o).pausedBy,
      'paused by krateo-installer uninstall at 2026-01-01T00:00:00Z: re-run that command to resume the uninstall',
    )
    o.installer!.metadata.annotations = { 'krateo.io/paused': 'true' }
    assert.equal(platformState(o).pausedBy, null, 'a pause of someone else is not ours to explain')
  })
})
