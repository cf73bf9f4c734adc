import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type Component, blockedByDisabled, layers, parseComponents, validateDag } from '../../src/lib/components.js'
import { deletableNow, drainWaves, finalizerOwner } from '../../src/lib/teardown.js'
import { UserError } from '../../src/lib/errors.js'

const c = (name: string, deps: string[] = [], feature?: string): Component => ({ name, kind: name.toUpperCase(), version: '1.0.0', deps, feature })
const seed = [c('authn-crd'), c('authn', ['authn-crd']), c('snowplow-crd'), c('snowplow', ['snowplow-crd']), c('frontend-crd'), c('frontend', ['frontend-crd', 'authn', 'snowplow']), c('portal', ['frontend'])]

describe('component plan (DAG)', () => {
  it('cuts the DAG into layers', () => {
    assert.deepEqual(layers(seed).map((l) => l.map((x) => x.name)), [['authn-crd', 'snowplow-crd', 'frontend-crd'], ['authn', 'snowplow'], ['frontend'], ['portal']])
  })
  it('names an unknown dep, a cycle and a duplicate', () => {
    assert.throws(() => validateDag([c('a', ['ghost'])]), (e) => e instanceof UserError && /"a" depends on unknown component "ghost"/.test(e.message) && e.exitCode === 8)
    assert.throws(() => validateDag([c('a', ['c']), c('b', ['a']), c('c', ['b'])]), /cycle: a -> c -> b -> a/)
    assert.throws(() => validateDag([c('a'), c('a')]), /listed twice/)
    assert.doesNotThrow(() => validateDag(seed))
  })
  it('rejects entries without name, kind or version', () => {
    assert.throws(() => parseComponents({ components: [{ name: 'x', kind: 'X' }] }), /component #1 .* lacks name, kind or version/)
    assert.deepEqual(parseComponents({ components: [{ name: 'x', kind: 'X', version: '1' }] })[0]!.deps, [])
  })
  it('finds enabled components that wait on a disabled feature', () => {
    const dag = [c('store', [], 'observability'), c('agent', ['store'], 'agents')]
    assert.deepEqual(blockedByDisabled(dag, { observability: false, agents: true }), [{ component: 'agent', dep: 'store' }])
    assert.deepEqual(blockedByDisabled(dag, { observability: true, agents: true }), [])
  })
})

describe('teardown order', () => {
  it('drains consumers first, independent branches together', () => {
    const all = new Set(seed.map((x) => x.name))
    assert.deepEqual(drainWaves(seed, all), [['portal'], ['frontend'], ['authn', 'snowplow', 'frontend-crd'], ['authn-crd', 'snowplow-crd']])
  })
  it('only waits on dependents that still exist', () => {
    assert.deepEqual(deletableNow(seed, new Set(['authn', 'authn-crd'])), ['authn'])
    assert.deepEqual(deletableNow(seed, new Set(['authn-crd', 'snowplow-crd'])).sort(), ['authn-crd', 'snowplow-crd'])
  })
  it('names who should clear a finalizer', () => {
    assert.match(finalizerOwner('composition.krateo.io/finalizer', 'authn'), /the cdc of authn/)
    assert.equal(finalizerOwner('finalizer.managedresource.krateo.io'), 'core-provider')
    assert.equal(finalizerOwner('ogen.krateo.io/finalizer'), 'the controller of ogen.krateo.io')
  })
})
