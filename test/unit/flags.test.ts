import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { featureSets, parseDuration } from '../../src/lib/flags.js'
import { helmSupported, parseHelmVersion } from '../../src/lib/helm.js'

describe('flag values', () => {
  it('parses durations and refuses the rest', () => {
    assert.equal(parseDuration('90s'), 90_000)
    assert.equal(parseDuration('20m'), 1_200_000)
    assert.equal(parseDuration('45'), 45_000)
    assert.throws(() => parseDuration('soon'), /--timeout "soon" is not a duration/)
  })
  it('turns --feature into helm --set values', () => {
    assert.deepEqual(featureSets(['agents=true', 'observability=false']), ['features.agents=true', 'features.observability=false'])
    assert.throws(() => featureSets(['agents']), /is not name=true\|false/)
  })
  it('accepts helm 3.16+ and 4.x only', () => {
    assert.equal(helmSupported(parseHelmVersion('v3.19.5+g1234')!), true)
    assert.equal(helmSupported(parseHelmVersion('v4.3.1')!), true)
    assert.equal(helmSupported(parseHelmVersion('v3.15.4')!), false)
    assert.equal(parseHelmVersion('nonsense'), null)
  })
})
