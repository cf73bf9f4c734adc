// The simulated controllers' work queue behaves as client-go's: a retry asked for soon is not lost behind a
// resync already scheduled for the same key (else a failed delete waits a whole resync, 10 min in some tests).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { WorkQueue } from '../../sandbox/engine/queue.js'

describe('sandbox work queue', () => {
  it('a key already waiting runs at the sooner of its two times', async () => {
    const queue = new WorkQueue(1, () => undefined)
    const runs: string[] = []
    queue.addAfter('cdc/x', 60_000, async () => {
      runs.push('late')
    })
    queue.addAfter('cdc/x', 20, async () => {
      runs.push('soon')
    })
    queue.addAfter('cdc/x', 30_000, async () => {
      runs.push('later again')
    })
    await new Promise((resolve) => setTimeout(resolve, 100))
    assert.deepEqual(runs, ['soon'])
  })
})
