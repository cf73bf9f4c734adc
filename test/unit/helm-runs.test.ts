// Which helm processes a re-run waits for: those working on the release in the same cluster, not another cluster's
// release of the same name (two installs side by side on one CI machine).
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { helmRunsOf } from '../../src/cluster/helm.js'

describe('helm runs of a release', () => {
  const dir = mkdtempSync(join(tmpdir(), 'helm-runs-'))
  // A process whose argv[0] is ".../helm", as a helm child of a killed run shows in /proc.
  const helm = join(dir, 'helm')
  symlinkSync(process.execPath, helm)
  const children: ChildProcess[] = []
  const fakeHelm = (...args: string[]) => {
    const child = spawn(helm, [
      '-e',
      'setTimeout(() => {}, 60000)',
      'upgrade',
      'krateo',
      '-n',
      'krateo-system',
      ...args,
    ])
    children.push(child)
    return child.pid!
  }
  after(() => {
    for (const c of children) c.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })

  it("counts the same cluster's and unnamed ones, not another kubeconfig's or context's", async () => {
    const ours = fakeHelm('--kubeconfig', '/tmp/a/kubeconfig')
    const theirs = fakeHelm('--kubeconfig', '/tmp/b/kubeconfig')
    const unnamed = fakeHelm()
    const otherContext = fakeHelm('--kubeconfig', '/tmp/a/kubeconfig', '--kube-context', 'prod')
    await new Promise((resolve) => setTimeout(resolve, 300))
    const found = helmRunsOf('krateo', 'krateo-system', { kubeconfig: '/tmp/a/kubeconfig', context: 'dev' })
    assert.deepEqual(found.sort(), [ours, unnamed].sort())
    assert.ok(!found.includes(theirs) && !found.includes(otherContext))
    assert.deepEqual(helmRunsOf('krateo', 'team-a', { kubeconfig: '/tmp/a/kubeconfig' }), [], 'another namespace')
  })
})
