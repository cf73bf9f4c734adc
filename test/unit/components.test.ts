import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  type Component,
  blockedByDisabled,
  layers,
  parseComponents,
  validateDag,
} from '../../src/platform/components.js'
import {
  awaitingReCreation,
  deletableNow,
  drainWaves,
  finalizerController,
  lostKinds,
  standInCrd,
} from '../../src/platform/drain.js'
import { UserError } from '../../src/platform/errors.js'

const c = (name: string, deps: string[] = [], feature?: string): Component => ({
  name,
  kind: name.toUpperCase(),
  version: '1.0.0',
  deps,
  feature,
})
const seed = [
  c('authn-crd'),
  c('authn', ['authn-crd']),
  c('snowplow-crd'),
  c('snowplow', ['snowplow-crd']),
  c('frontend-crd'),
  c('frontend', ['frontend-crd', 'authn', 'snowplow']),
  c('portal', ['frontend']),
]

describe('component plan (DAG)', () => {
  it('cuts the DAG into layers', () => {
    assert.deepEqual(
      layers(seed).map((l) => l.map((x) => x.name)),
      [['authn-crd', 'snowplow-crd', 'frontend-crd'], ['authn', 'snowplow'], ['frontend'], ['portal']],
    )
  })
  it('names an unknown dep, a cycle and a duplicate', () => {
    assert.throws(
      () => validateDag([c('a', ['ghost'])]),
      (e) => e instanceof UserError && /"a" depends on unknown component "ghost"/.test(e.message) && e.exitCode === 8,
    )
    assert.throws(() => validateDag([c('a', ['c']), c('b', ['a']), c('c', ['b'])]), /cycle: a -> c -> b -> a/)
    assert.throws(() => validateDag([c('a'), c('a')]), /listed twice/)
    assert.doesNotThrow(() => validateDag(seed))
  })
  it('rejects entries without name, kind or version', () => {
    assert.throws(
      () => parseComponents({ components: [{ name: 'x', kind: 'X' }] }),
      /component #1 .* lacks name, kind or version/,
    )
    assert.deepEqual(parseComponents({ components: [{ name: 'x', kind: 'X', version: '1' }] })[0]!.deps, [])
  })
  it('finds enabled components that wait on a disabled feature', () => {
    const dag = [c('store', [], 'observability'), c('agent', ['store'], 'agents')]
    assert.deepEqual(blockedByDisabled(dag, { observability: false, agents: true }), [
      { component: 'agent', dep: 'store' },
    ])
    assert.deepEqual(blockedByDisabled(dag, { observability: true, agents: true }), [])
  })
})

describe('teardown order', () => {
  it('drains consumers first, independent branches together', () => {
    const all = new Set(seed.map((x) => x.name))
    assert.deepEqual(drainWaves(seed, all), [
      ['portal'],
      ['frontend'],
      ['authn', 'snowplow', 'frontend-crd'],
      ['authn-crd', 'snowplow-crd'],
    ])
  })
  it('only waits on dependents that still exist', () => {
    assert.deepEqual(deletableNow(seed, new Set(['authn', 'authn-crd'])), ['authn'])
    assert.deepEqual(deletableNow(seed, new Set(['authn-crd', 'snowplow-crd'])).sort(), ['authn-crd', 'snowplow-crd'])
  })
  it('lets the Installer re-create a pruned component first only while a dependent of it still exists', () => {
    const stages = new Map([
      ['authn', 'crd-served'],
      ['snowplow', 'error'],
    ])
    assert.deepEqual(
      awaitingReCreation(seed, stages, new Set(['portal', 'frontend', 'authn-crd', 'snowplow-crd', 'frontend-crd'])),
      ['authn'],
      'snowplow will not come (its definition is in error): not waited for',
    )
    assert.deepEqual(awaitingReCreation(seed, stages, new Set(['authn-crd'])), [], 'nothing left that needs authn')
  })
  it('waits on a dependent that still exists through one that does not (authn pruned mid-upgrade)', () => {
    assert.deepEqual(
      deletableNow(seed, new Set(['portal', 'authn-crd'])),
      ['portal'],
      'the portal holds objects of the kinds authn-crd ships',
    )
  })
  it('names who should clear a finalizer', () => {
    const cd = {
      metadata: { name: 'authn' },
      status: { resource: 'authns', apiVersion: 'composition.krateo.io/v0-22-0' },
    }
    assert.equal(
      finalizerController('composition.krateo.io/finalizer', cd, 'ns', []).what,
      'the cdc Deployment authns-v0-22-0-controller',
      'the real Deployment name, not a <plural>-<version> pattern',
    )
    assert.equal(
      finalizerController('finalizer.managedresource.krateo.io', undefined, 'ns', ['krateo-core-provider']).deployment,
      'krateo-core-provider',
    )
    assert.equal(
      finalizerController('ogen.krateo.io/finalizer', undefined, 'ns', []).what,
      'the controller of ogen.krateo.io',
    )
  })
  it('finds the composition kinds a release lists whose CRD is gone, once each', () => {
    const crd = (kind: string, versions: [string, boolean][], group = 'composition.krateo.io') => ({
      spec: {
        group,
        names: { kind, plural: kind.toLowerCase() + 's' },
        scope: 'Namespaced',
        versions: versions.map(([name, served]) => ({ name, served, storage: served })),
      },
    })
    const obj = (apiVersion: string, kind: string, name: string) => ({ apiVersion, kind, metadata: { name } })
    const manifest = [
      obj('core.krateo.io/v1alpha1', 'CompositionDefinition', 'authn'),
      obj('composition.krateo.io/v0-22-0', 'Authn', 'authn'),
      obj('composition.krateo.io/v0-3-0', 'KrateoSseProxy', 'krateo-sse-proxy'),
      obj('composition.krateo.io/v0-3-0', 'KrateoSseProxy', 'another'),
      obj('composition.krateo.io/v0-1-0', 'Portal', 'portal'),
    ]
    const crds = [
      crd('Authn', [['v0-22-0', true]]),
      crd('Portal', [
        ['v0-1-0', false],
        ['v0-2-0', true],
      ]),
      crd('KrateoSseProxy', [['v0-3-0', true]], 'other.io'),
    ]
    assert.deepEqual(
      lostKinds(manifest, crds),
      [{ kind: 'KrateoSseProxy', version: 'v0-3-0' }],
      'Portal keeps its CRD (another version served): no stand-in of the same kind',
    )
    assert.deepEqual(lostKinds(manifest.slice(0, 2), crds), [])
  })
  it("builds a stand-in CRD under its own plural, so it never takes the real CRD's name", () => {
    const crd = standInCrd('KrateoSseProxy', 'v0-3-0', 'krateo-system')
    assert.equal(crd.metadata?.name, 'krateosseproxystandins.composition.krateo.io')
    assert.notEqual(crd.metadata?.name, 'krateosseproxies.composition.krateo.io')
    assert.deepEqual(
      [crd.spec.names.kind, crd.spec.versions.map((v) => [v.name, v.served, v.storage])],
      ['KrateoSseProxy', [['v0-3-0', true, true]]],
    )
    assert.equal(crd.metadata?.labels?.['krateo-installer/stand-in'], 'true')
    assert.equal(
      crd.metadata?.labels?.['krateo-installer/namespace'],
      'krateo-system',
      "another platform's uninstall never removes it",
    )
  })
})
