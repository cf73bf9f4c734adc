// The bound the install speed is measured against (npm run bench): per dependency layer the slowest
// component's time from its Composition's creation to Ready, summed.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { criticalPath, depths } from '../../bench/speed.js'
import type { Component } from '../../src/platform/components.js'

const c = (name: string, deps: string[] = []): Component => ({ name, kind: name, version: '1.0.0', deps })
const dag = [
  c('authn-crd'),
  c('snowplow-crd'),
  c('authn', ['authn-crd']),
  c('snowplow', ['snowplow-crd']),
  c('frontend', ['authn', 'snowplow']),
]

describe('critical path', () => {
  it('layers components by their deepest dependency', () => {
    assert.deepEqual(Object.fromEntries(depths(dag)), {
      'authn-crd': 1,
      'snowplow-crd': 1,
      authn: 2,
      snowplow: 2,
      frontend: 3,
    })
  })

  it('sums the slowest component of each layer, the Installer first', () => {
    const t = (createdAt: number, readyAt: number) => ({ createdAt, readyAt })
    const times = new Map([
      ['authn-crd', t(0, 1000)],
      ['snowplow-crd', t(0, 1500)],
      ['authn', t(2000, 5000)],
      ['snowplow', t(2000, 3000)],
      ['frontend', t(6000, 8000)],
    ])
    const layers = criticalPath(dag, times, t(-1000, 0))
    assert.deepEqual(
      layers.map((l) => [l.slowest, l.ms]),
      [
        ['installer', 1000],
        ['snowplow-crd', 1500],
        ['authn', 3000],
        ['frontend', 2000],
      ],
    )
  })
})
