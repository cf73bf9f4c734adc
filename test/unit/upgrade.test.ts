// The upgrade plan: pure functions over component lists and features, no cluster.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  compareVersions,
  consequences,
  diffComponents,
  directionOf,
  featurePlan,
  needsPause,
  planBasis,
  planDrift,
  removalWaves,
  stagedLayers,
  upgradeFrom,
} from '../../src/platform/upgrade-plan.js'
import type { KObj } from '../../src/platform/kobj.js'
import type { Observed } from '../../src/platform/objects.js'
import type { Component } from '../../src/platform/components.js'
import { parseFeatures } from '../../src/platform/flags.js'
import { ENGINE_TRAITS, traitsOf } from '../../src/platform/engine.js'
import { GENERATIONS } from '../../sandbox/engine/generation.js'

const c = (name: string, version: string, deps: string[] = [], feature?: string): Component => ({
  name,
  kind: name.replace(/-/g, ''),
  version,
  deps,
  feature,
})

describe('upgrade plan', () => {
  it('orders versions numerically, not as text', () => {
    assert.equal(compareVersions('0.2.10', '0.2.9'), 1)
    assert.equal(compareVersions('0.2.53', '0.2.53'), 0)
    assert.equal(compareVersions('0.2.53', '0.2.54'), -1)
    assert.equal(compareVersions('1.0.0', '0.99.99'), 1)
    assert.equal(compareVersions('0.3.0-rc.1', '0.3.0'), -1, 'a pre-release comes before its release')
    assert.equal(compareVersions('0.3.0-rc.10', '0.3.0-rc.9'), 1)
    assert.equal(compareVersions('v0.2.54', '0.2.54'), 0, 'a leading v is ignored')
    assert.equal(directionOf('0.2.53', '0.2.54'), 'upgrade')
    assert.equal(directionOf('0.2.54', '0.2.53'), 'downgrade')
    assert.equal(directionOf('0.2.54', '0.2.54'), 'same')
  })

  it('a resumed upgrade starts from the version its first run paused at, though the installer definition moved', () => {
    const installer = (annotations: Record<string, string>): KObj => ({ metadata: { name: 'installer', annotations } })
    const paused = { 'krateo-installer/upgrade-to': '0.2.54', 'krateo-installer/upgrade-from': '0.2.53' }
    assert.equal(upgradeFrom(installer(paused), '0.2.54', '0.2.54'), '0.2.53')
    assert.equal(directionOf(upgradeFrom(installer(paused), '0.2.54', '0.2.54')!, '0.2.54'), 'upgrade')
    assert.equal(upgradeFrom(installer(paused), '0.2.54', '0.2.55'), '0.2.54', 'another target: the definition says')
    assert.equal(upgradeFrom(installer({}), '0.2.53', '0.2.54'), '0.2.53', 'not paused: the definition says')
    const forged = { ...paused, 'krateo-installer/upgrade-from': '\u001b[2Jx' }
    assert.equal(upgradeFrom(installer(forged), '0.2.54', '0.2.54'), '0.2.54', 'not a version: ignored')
    assert.equal(upgradeFrom(null, null, '0.2.54'), null)
  })

  it('finds components added, removed and moved, and leftover definitions of an earlier run', () => {
    const before = [c('crd', '0.1.0'), c('svc', '1.0.0', ['crd']), c('old', '0.3.0', ['svc'])]
    const after = [c('crd', '0.1.0'), c('svc', '1.1.0', ['crd']), c('new', '0.1.0', ['svc'])]
    const diff = diffComponents(before, after, [c('ghost', '0.0.1'), c('svc', '1.0.0')])
    assert.deepEqual(
      diff.added.map((x) => x.name),
      ['new'],
    )
    assert.deepEqual(
      diff.removed.map((x) => x.name),
      ['old', 'ghost'],
    )
    assert.deepEqual(diff.changed, [{ name: 'svc', from: '1.0.0', to: '1.1.0' }])
    assert.deepEqual(diff.unchanged, ['crd'])
    assert.equal(
      consequences({ diff, features: featurePlan({}, {}, {}) }),
      'move svc 1.0.0 -> 1.1.0; add new; remove old, ghost',
    )
  })

  it('drains removed components leaves first', () => {
    const removed = [c('base', '1'), c('mid', '1', ['base']), c('leaf', '1', ['mid']), c('lone', '1')]
    assert.deepEqual(removalWaves(removed), [['leaf', 'lone'], ['mid'], ['base']])
  })

  it('keeps runtime features, applies requested ones, and adds flags new to the chart at their default', () => {
    const plan = featurePlan(
      { platform: true, oasgen: false },
      { platform: true, oasgen: true, agents: false, newthing: true },
      { agents: true },
    )
    assert.deepEqual(plan.features, { platform: true, oasgen: false, agents: true, newthing: true })
    assert.deepEqual(plan.patch, { agents: true, newthing: true }, 'the runtime oasgen=false is not touched')
    assert.deepEqual(plan.changes, [
      { name: 'newthing', from: null, to: true },
      { name: 'agents', from: null, to: true },
    ])
    assert.deepEqual(
      featurePlan({ agents: true }, { agents: false }, { agents: true }).patch,
      {},
      'asking for what runs changes nothing',
    )
  })

  it('pauses the Installer for any version move, not for a same-version feature switch', () => {
    const none = { added: [], removed: [], changed: [], unchanged: ['a'] }
    assert.equal(needsPause({ direction: 'same', diff: none }), false)
    assert.equal(needsPause({ direction: 'upgrade', diff: none }), true)
    assert.equal(needsPause({ direction: 'same', diff: { ...none, removed: [c('x', '1')] } }), true)
  })

  it('parses --feature, the last of a name winning', () => {
    assert.deepEqual(parseFeatures(['agents=true', 'oasgen=false', 'agents=false']), { agents: false, oasgen: false })
    assert.throws(() => parseFeatures(['agents=on']), /--feature "agents=on" is not name=true\|false/)
  })

  it('under the lock, refuses a plan whose basis moved (version, Installer, release, spec) and keeps one that did not', () => {
    const installer = (uid: string, spec: unknown) => ({ metadata: { name: 'installer', uid }, spec }) as KObj
    const cds = (v: string) =>
      new Map([['installer', { metadata: { name: 'installer' }, spec: { chart: { version: v } } } as KObj]])
    const planned = planBasis(installer('u1', { a: 1 }), cds('0.2.54'), 3)
    assert.equal(planDrift(planned, planBasis(installer('u1', { a: 1 }), cds('0.2.54'), 3)), null)
    assert.match(
      planDrift(planned, planBasis(installer('u1', { a: 1 }), cds('0.2.55'), 3)) ?? '',
      /running installer is now 0\.2\.55, not 0\.2\.54/,
      'another run moved the version: a downgrade check made before no longer holds',
    )
    assert.match(planDrift(planned, planBasis(installer('u2', { a: 1 }), cds('0.2.54'), 3)) ?? '', /replaced/)
    assert.match(planDrift(planned, planBasis(installer('u1', { a: 1 }), cds('0.2.54'), 4)) ?? '', /revision 4/)
    assert.match(planDrift(planned, planBasis(installer('u1', { a: 2 }), cds('0.2.54'), 3)) ?? '', /spec was edited/)
  })
})

describe('moving definitions ahead of the installer (Gen S)', () => {
  it("moves only the definitions the installer rendered, never a user's blueprint of the same name", () => {
    const cd = (name: string, labels: Record<string, string>): KObj => ({ metadata: { name, labels } })
    const ours = { 'app.kubernetes.io/managed-by': 'krateo-installer' }
    const observed = {
      installer: { metadata: { name: 'installer' } },
      cds: new Map([
        ['crd', cd('crd', ours)],
        ['svc', cd('svc', {})],
      ]),
    } as unknown as Observed
    const components = [c('crd', '0.2.0'), c('svc', '1.1.0', ['crd'])]
    const diff = {
      changed: [
        { name: 'crd', from: '0.1.0', to: '0.2.0' },
        { name: 'svc', from: '1.0.0', to: '1.1.0' },
      ],
    }
    const layers = stagedLayers({ components, diff, observed, generation: 'S' } as unknown as Parameters<
      typeof stagedLayers
    >[0])
    assert.deepEqual(
      layers.map((l) => l.map((x) => x.name)),
      [['crd']],
    )
    // Where core-provider prunes versions nothing references, nothing moves ahead of the installer's render.
    const onN = stagedLayers({ components, diff, observed, generation: 'N' } as unknown as Parameters<
      typeof stagedLayers
    >[0])
    assert.deepEqual(onN, [])
  })
})

describe('engine generations as data', () => {
  it("the CLI's traits are the sandbox profiles' (the simulator and the CLI read the contract alike)", () => {
    for (const name of ['S', 'N'] as const) {
      const profile = GENERATIONS[name]
      assert.deepEqual(ENGINE_TRAITS[name], {
        versionStamp: profile.versionStamp,
        pruneStaleVersions: profile.pruneStaleVersions,
      })
    }
    assert.equal(traitsOf(null).versionStamp, null, 'an engine not seen stamps nothing yet')
  })
})
