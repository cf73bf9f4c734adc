// A watched collection against an API that fails: it says why, and it backs off instead of hammering the
// server (a proxy that ends every watch at once used to cost a reconnect every 50 ms per collection).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Watch } from '@kubernetes/client-node'
import { WatchedCollection, type Lister } from '../../src/cluster/watch.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A Watch whose every watch ends at once, as a front end that cannot stream does. */
function endingWatch(): { watch: Watch; opened: () => number } {
  let opened = 0
  const watch = {
    watch: async (_path: string, _q: unknown, _onEvent: unknown, done: (err: unknown) => void) => {
      opened++
      setImmediate(() => done(null))
      return new AbortController()
    },
  } as unknown as Watch
  return { watch, opened: () => opened }
}

describe('watched collection', () => {
  it('names a list that keeps failing (permission denied) and backs off', async () => {
    let lists = 0
    const list: Lister = async () => {
      lists++
      throw Object.assign(new Error('forbidden'), { code: 403 })
    }
    const w = new WatchedCollection(
      endingWatch().watch,
      list,
      '/apis/composition.krateo.io/v1/namespaces/krateo-system/authns',
      () => undefined,
    ).start()
    await sleep(1600)
    w.stop()
    assert.equal(w.failure, 'HTTP 403: permission denied')
    assert.ok(lists >= 2 && lists <= 3, `1 s then 2 s apart, not a tight loop (${lists} lists)`)
    assert.equal(w.synced, false, 'never claims to hold the collection')
  })

  it('a watch that ends as soon as it opens is a failure with backoff, not a reconnect every 50 ms', async () => {
    const { watch, opened } = endingWatch()
    const list: Lister = async () => ({ metadata: { resourceVersion: '7' }, items: [] })
    const w = new WatchedCollection(watch, list, '/api/v1/namespaces/krateo-system/services', () => undefined).start()
    await sleep(1600)
    w.stop()
    assert.ok(opened() <= 3, `${opened()} watches opened in 1.6 s`)
    assert.equal(w.failure, 'the watch ended as soon as it opened')
    assert.equal(w.synced, true, 'the list itself worked')
  })
})
