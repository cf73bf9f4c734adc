// The drain order of uninstall (consumers first, branches in parallel) and which error a user sees when the
// deadline ends several drains at once.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Component } from '../../src/platform/components.js'
import { ExitCode, UserError } from '../../src/platform/errors.js'
import { drainInOrder } from '../../src/operations/uninstall.js'

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
