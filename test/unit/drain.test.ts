// The drain order of uninstall (consumers first, branches in parallel) and which error a user sees when the
// deadline ends several drains at once; when a wait for one object ends, timed out or stuck.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Component } from '../../src/platform/components.js'
import { ExitCode, UserError } from '../../src/platform/errors.js'
import { drainInOrder } from '../../src/operations/uninstall.js'
import {
  type FinalizerController,
  type GoneLook,
  STUCK_AFTER_MS,
  allControllersDown,
  goneVerdict,
  isKubernetesFinalizer,
} from '../../src/platform/drain.js'

const c = (name: string, deps: string[] = []): Component => ({ name, kind: name, version: '1.0.0', deps })
const dag = [c('authn-crd'), c('authn', ['authn-crd']), c('portal'), c('frontend', ['authn'])]
const tick = () => new Promise((r) => setTimeout(r, 5))

describe('drainInOrder', () => {
  it('drains consumers before what they depend on', async () => {
    const order: string[] = []
    await drainInOrder(dag, new Set(dag.map((x) => x.name)), async (x) => {
      await tick()
      order.push(x.name)
    })
    assert.ok(order.indexOf('frontend') < order.indexOf('authn'))
    assert.ok(order.indexOf('authn') < order.indexOf('authn-crd'))
  })

  it('at the deadline, names the component stuck on a finalizer, not the one still moving', async () => {
    const err = await drainInOrder(dag, new Set(['portal', 'frontend']), async (x) => {
      // frontend times out first; portal's drain ends a moment later, stuck.
      if (x.name === 'frontend') throw new UserError('timed out waiting for frontend', ExitCode.Timeout)
      await tick()
      throw new UserError('pages/dashboard of portal is stuck', ExitCode.Stuck)
    }).catch((e: unknown) => e)
    assert.ok(err instanceof UserError)
    assert.equal(err.exitCode, ExitCode.Stuck)
  })

  it('any other failure ends the drain at once, as it is', async () => {
    let portalEnded = false
    const err = await drainInOrder(dag, new Set(['portal', 'frontend']), async (x) => {
      if (x.name === 'frontend') throw new UserError('cannot delete frontend', ExitCode.Cluster)
      await new Promise((r) => setTimeout(r, 50))
      portalEnded = true
    }).catch((e: unknown) => e)
    assert.equal((err as UserError).exitCode, ExitCode.Cluster)
    assert.equal(portalEnded, false)
  })
})

describe('goneVerdict: when a wait for an object to go ends, and what --force may remove', () => {
  const cdc: FinalizerController = {
    finalizer: 'composition.krateo.io/finalizer',
    deployment: 'portal-v0-9-0-controller',
    namespace: 'krateo-system',
    what: 'the cdc Deployment portal-v0-9-0-controller',
  }
  const other: FinalizerController = {
    finalizer: 'example.com/cleanup',
    deployment: null,
    namespace: 'krateo-system',
    what: 'the controller of example.com',
  }
  const look = (l: Partial<GoneLook>): GoneLook => ({
    unchangedForMs: STUCK_AFTER_MS + 1,
    allDownForMs: null,
    deleting: true,
    finalizers: [cdc.finalizer, other.finalizer],
    controllers: [cdc, other],
    down: [],
    pastDeadline: false,
    ...l,
  })

  it('waits for something slow whose controller runs, however long it has not changed', () => {
    assert.deepEqual(goneVerdict(look({ unchangedForMs: 10 * 60_000 })), { verdict: 'wait' })
  })

  it('at the deadline, what changed lately or is not being deleted is a timeout, not stuck', () => {
    assert.equal(goneVerdict(look({ pastDeadline: true, unchangedForMs: 1000 })).verdict, 'timeout')
    assert.equal(goneVerdict(look({ pastDeadline: true, deleting: false })).verdict, 'timeout')
    assert.equal(goneVerdict(look({ pastDeadline: true, finalizers: [] })).verdict, 'timeout')
  })

  it('at the deadline, unchanged and held by finalizers: stuck, every finalizer a target', () => {
    const v = goneVerdict(look({ pastDeadline: true }))
    assert.equal(v.verdict, 'stuck')
    assert.deepEqual(v.verdict === 'stuck' && v.targets, [cdc, other])
  })

  it("never makes Kubernetes' own finalizers a target, at the deadline or with controllers down (review N12)", () => {
    const own = (finalizer: string): FinalizerController => ({ ...other, finalizer, what: 'Kubernetes' })
    const pvc = own('kubernetes.io/pvc-protection')
    const fg = own('foregroundDeletion')
    const crd = own('customresourcecleanup.apiextensions.k8s.io')
    const fins = [cdc.finalizer, pvc.finalizer, fg.finalizer, crd.finalizer]
    const v = goneVerdict(look({ pastDeadline: true, finalizers: fins, controllers: [cdc, pvc, fg, crd] }))
    assert.deepEqual(v.verdict === 'stuck' && [v.targets, v.kept], [[cdc], fins.slice(1)])
    // Held only by them: stuck, with nothing --force may remove.
    const only = goneVerdict(look({ pastDeadline: true, finalizers: [pvc.finalizer], controllers: [pvc] }))
    assert.deepEqual(only.verdict === 'stuck' && [only.targets, only.kept], [[], [pvc.finalizer]])
    assert.equal(isKubernetesFinalizer('test.krateo.io/hold'), false)
  })

  it('before the deadline, stuck only once every controller was down long enough; then only their finalizers', () => {
    assert.equal(goneVerdict(look({ down: [cdc], allDownForMs: STUCK_AFTER_MS - 1 })).verdict, 'wait')
    const v = goneVerdict(look({ down: [cdc], allDownForMs: STUCK_AFTER_MS + 1 }))
    assert.equal(v.verdict, 'stuck')
    assert.deepEqual(v.verdict === 'stuck' && v.targets, [cdc])
    assert.match(v.verdict === 'stuck' ? v.who : '', /portal-v0-9-0-controller, which is not running\)$/)
  })

  it('a finalizer of a controller it cannot see never counts as all down', () => {
    assert.equal(allControllersDown([cdc.finalizer, other.finalizer], [cdc, other], [cdc]), false)
    assert.equal(allControllersDown([cdc.finalizer], [cdc], [cdc]), true)
    assert.equal(allControllersDown([], [], []), false)
  })
})
