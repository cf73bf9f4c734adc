// A moment without the API server is not a failure: during a run, a step that could not reach the server is
// tried again until the run's deadline; before the run has begun (preflight) it fails at once.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isUnreachable } from '../../src/cluster/cluster.js'
import { Operation } from '../../src/operations/operation.js'
import { ExitCode, UserError } from '../../src/platform/errors.js'
import type { Cluster } from '../../src/cluster/cluster.js'

const refused = () =>
  Object.assign(new Error('request to https://127.0.0.1:6443/api failed, reason: connect ECONNREFUSED'), {
    code: 'ECONNREFUSED',
  })

function operation(): Operation {
  return new Operation({
    cluster: {} as Cluster,
    namespace: 'krateo-system',
    command: 'install',
    resumeHint: 're-run',
    timeoutMs: 60_000,
    json: true,
  })
}

/** A step that cannot reach the server `failures` times, then works; what it reported. */
function flaky(failures: number, error: () => unknown = refused) {
  const lines: string[] = []
  let runs = 0
  return {
    lines,
    runs: () => runs,
    step: {
      title: 'Apply the Installer CR',
      run: async (r: { line(m: string): void }) => {
        const report = r.line.bind(r)
        r.line = (m: string) => {
          lines.push(m)
          report(m)
        }
        runs++
        if (runs <= failures) throw error()
        return 'applied'
      },
    },
  }
}

describe('API outages during a run', () => {
  it('tells a server that cannot be reached from one that answers no', () => {
    assert.ok(isUnreachable(refused()))
    assert.ok(isUnreachable(Object.assign(new Error('x'), { code: 503 })))
    const wrapped = new UserError('cannot apply', ExitCode.Cluster)
    wrapped.transient = true
    assert.ok(isUnreachable(wrapped))
    assert.ok(!isUnreachable(Object.assign(new Error('forbidden'), { code: 403 })))
    assert.ok(!isUnreachable(new UserError('cannot apply: HTTP 422', ExitCode.Cluster)))
  })

  it('runs a step again while the server is unreachable, and says so', async () => {
    const op = operation()
    op.deadline = Date.now() + 30_000
    const f = flaky(1)
    await op.steps([f.step])
    assert.equal(f.runs(), 2)
    assert.match(f.lines[0]!, /^API server unreachable for 0 s, retrying: .*ECONNREFUSED/)
    assert.match(f.lines.at(-1)!, /the API server answers again/)
  })

  it('fails at once before the run has begun, after its deadline, and on an answer that refuses', async () => {
    const before = operation()
    await assert.rejects(before.steps([flaky(1).step]), /ECONNREFUSED/)
    const late = operation()
    late.deadline = Date.now() - 1
    await assert.rejects(late.steps([flaky(1).step]), /ECONNREFUSED/)
    const denied = operation()
    denied.deadline = Date.now() + 30_000
    const f = flaky(1, () => Object.assign(new Error('forbidden'), { code: 403 }))
    await assert.rejects(denied.steps([f.step]), /forbidden/)
    assert.equal(f.runs(), 1)
  })
})
