// The sandbox's own lifecycle as people and CI use it: the `sandbox up/down` commands stop exactly what
// they started, and a test process that dies without cleaning up still leaves nothing behind.
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, it } from 'node:test'
import { processesMentioning } from '../../sandbox/lib/processes.js'
import { eventually } from '../helpers/sandbox.js'

const run = promisify(execFile)
const cli = (...args: string[]) =>
  run(process.execPath, ['--import', 'tsx', 'sandbox/cli.ts', ...args], {
    env: { ...process.env, NODE_NO_WARNINGS: '1' },
  })

describe('sandbox lifecycle', () => {
  it('`sandbox up` prints its time and a kubeconfig; `sandbox down` stops every process it started', async () => {
    const name = `lifecycle-${process.pid}`
    const dir = join(tmpdir(), `krateo-sandbox-${name}`)
    try {
      const up = await cli('up', '--name', name, '--no-agent')
      assert.match(up.stdout, /up in \d+\.\ds/)
      assert.match(up.stdout, new RegExp(`kubeconfig: ${dir}/kubeconfig`))
      assert.ok(
        processesMentioning(dir).length >= 6,
        'etcd, apiserver, controller-manager, scheduler, kwok and registry run',
      )
      const facts = await cli('facts', '--name', name)
      assert.match(facts.stdout, /node kwok-node-0: Ready/)
      await assert.rejects(cli('up', '--name', name), /already running/)
    } finally {
      const down = await cli('down', '--name', name)
      assert.match(down.stdout, /stopped/)
    }
    assert.deepEqual(processesMentioning(dir), [])
    assert.equal(existsSync(dir), false)
    const again = await cli('down', '--name', name)
    assert.match(again.stdout, /is not running/)
  })

  it('tears the sandbox down when the process that owns it dies without stopping it', async () => {
    const script = `
      import { startSandbox } from './sandbox/lib/sandbox.ts'
      const sb = await startSandbox({ ownerPid: process.pid })
      console.log(sb.dir)
      setInterval(() => {}, 1000)`
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    const dir = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (b: Buffer) => resolve(b.toString().trim()))
      child.on('exit', (code) => reject(new Error(`owner exited early (${code})`)))
    })
    assert.ok(processesMentioning(dir).length > 0)
    child.kill('SIGKILL')
    await eventually(
      'sandbox torn down after its owner died',
      async () => processesMentioning(dir).length === 0 && !existsSync(dir),
      30_000,
    )
  })
})
