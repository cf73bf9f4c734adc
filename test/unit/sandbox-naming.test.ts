import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { bundleBase, dashedVersion, kindFromChart, pluralFromKind } from '../../sandbox/engine/naming.js'
import { nextFreeIP } from '../../sandbox/lib/loadbalancer.js'
import { setConditions } from '../../sandbox/engine/conditions.js'

describe('core-provider naming rules (contract section 2)', () => {
  it('PascalCases chart names on non-alphanumerics', () => {
    assert.equal(kindFromChart('krateo-authn'), 'KrateoAuthn')
    assert.equal(kindFromChart('krateo-sse-proxy'), 'KrateoSseProxy')
    assert.equal(kindFromChart('installer'), 'Installer')
    assert.equal(kindFromChart('otel_collector.daemonset'), 'OtelCollectorDaemonset')
  })
  it('pluralizes the lowercase kind in English', () => {
    assert.equal(pluralFromKind('KrateoSseProxy'), 'krateosseproxies')
    assert.equal(pluralFromKind('Installer'), 'installers')
    assert.equal(pluralFromKind('KagentCrds'), 'kagentcrdses')
    assert.equal(pluralFromKind('Gateway'), 'gateways')
  })
  it('dashes versions and names the cdc bundle after plural and version', () => {
    assert.equal(dashedVersion('0.2.53'), 'v0-2-53')
    assert.equal(bundleBase('installers', '0.2.53'), 'installers-v0-2-53')
  })
})

describe('sandbox LoadBalancer IPs', () => {
  it('hands out documentation-range addresses and skips taken ones', () => {
    assert.equal(nextFreeIP(new Set()), '198.51.100.10')
    assert.equal(nextFreeIP(new Set(['198.51.100.10', '198.51.100.11'])), '198.51.100.12')
    const all = new Set(Array.from({ length: 245 }, (_, i) => `198.51.100.${i + 10}`))
    assert.equal(nextFreeIP(all), undefined)
  })
})

describe('conditions', () => {
  it('keeps lastTransitionTime while the status stays the same', () => {
    const first = setConditions([], { type: 'Ready', status: 'False', reason: 'Creating' })
    const t = first[0]!.lastTransitionTime
    const second = setConditions([{ ...first[0]!, lastTransitionTime: '2020-01-01T00:00:00Z' }], {
      type: 'Ready',
      status: 'False',
      reason: 'Unavailable',
    })
    assert.equal(second[0]!.lastTransitionTime, '2020-01-01T00:00:00Z')
    assert.equal(second[0]!.reason, 'Unavailable')
    const third = setConditions(second, { type: 'Ready', status: 'True', reason: 'Available' })
    assert.notEqual(third[0]!.lastTransitionTime, '2020-01-01T00:00:00Z')
    assert.ok(t)
  })
})
