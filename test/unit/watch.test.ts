// A watched collection against an API that fails: it says why, and it backs off instead of hammering the
// server (a proxy that ends every watch at once used to cost a reconnect every 50 ms per collection).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Watch } from '@kubernetes/client-node'
import { ObjectWatch, WatchedCollection, type Lister } from '../../src/cluster/watch.js'
import { servedCollection } from '../../src/platform/objects.js'

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

// Review N13: a version no longer served (Gen N prunes it, a version move mid-drain) answers 404 for the whole
// collection; that used to read as "the Composition is gone" and the drain moved on while it still finalized.
describe('an object whose collection is not served', () => {
  const path = '/apis/composition.krateo.io/v0-2-53/namespaces/krateo-system/portals'
  const crd = (versions: { name: string; served: boolean; storage?: boolean }[]) => ({
    metadata: { name: 'portals.composition.krateo.io' },
    spec: { versions },
  })

  it('is unknown, not gone, while its collection answers 404', async () => {
    const w = new ObjectWatch(endingWatch().watch, async () => null, path, 'portal')
    await sleep(50)
    w.stop()
    assert.equal(w.current, undefined, 'not null: nothing says it is gone')
    assert.equal(w.collectionMissing, true)
  })

  it('is gone with its CRD, read at a served version when its own is not, unreadable when none is', () => {
    assert.equal(servedCollection(path, null), 'gone')
    assert.equal(
      servedCollection(
        path,
        crd([
          { name: 'v0-2-53', served: false },
          { name: 'v0-2-54', served: true, storage: true },
        ]),
      ),
      '/apis/composition.krateo.io/v0-2-54/namespaces/krateo-system/portals',
    )
    assert.equal(servedCollection(path, crd([{ name: 'v0-2-53', served: true }])), path)
    assert.equal(servedCollection(path, crd([{ name: 'v0-2-53', served: false }])), 'unreadable')
    assert.equal(servedCollection('/api/v1/namespaces/krateo-system/services', null), 'unreadable', 'core kinds')
  })
})
