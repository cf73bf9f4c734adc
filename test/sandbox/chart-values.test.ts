// The newer chart's values (the Gen N fixture line, installer 0.3.0): a schema that refuses keys it does not
// know, vertexAI on by default with no projectID, charts under the newer registry path. Preflight only: nothing
// is installed, so one sandbox serves every case.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { onGeneration, useSandbox, TEST_RESYNC_SECONDS } from '../helpers/sandbox.js'
import { runCli, sandboxEnv } from '../helpers/cli.js'

describe(onGeneration("the newer chart's values"), () => {
  const { sandbox } = useSandbox({ engineSettings: { resyncSeconds: TEST_RESYNC_SECONDS } })
  const chart = () => [
    '--kubeconfig',
    sandbox().kubeconfig,
    '--chart',
    `oci://${sandbox().registry}/krateo/installer`,
    '--version',
    '0.3.0',
    '--plain-http',
  ]
  const dryRun = (...extra: string[]) =>
    runCli(['install', ...chart(), '--dry-run', ...extra], { env: sandboxEnv(sandbox()) })

  it('refuses vertexAI without a projectID while the agents are on, before any change, naming the flags that fix it', async () => {
    const res = await dryRun()
    assert.equal(res.code, 8, res.stdout + res.stderr)
    assert.match(
      res.stderr,
      /^Error: vertexAI is enabled \(the chart's default\) but vertexAI\.projectID is empty, so kagent-crds, clickhouse-mcp-server, kagent would install and never work; pass --set vertexAI\.projectID=/m,
    )
    assert.equal(res.stderr.trim().split('\n').length, 1, 'one line')
  })

  it('accepts the projectID, a local model, or the agents off', async () => {
    for (const extra of [
      ['--set', 'vertexAI.projectID=acme-ai'],
      ['--set', 'vertexAI.enabled=false', '--set', 'localModel.enabled=true'],
      ['--feature', 'coreAgents=false'],
    ]) {
      const res = await dryRun(...extra)
      assert.equal(res.code, 0, `${extra.join(' ')}: ${res.stderr}`)
      assert.match(res.stdout, /installer 0\.3\.0/)
    }
  })

  it('a key the chart does not know is refused by its schema with one line (exit 8)', async () => {
    const res = await dryRun('--set', 'vertexAI.projectID=acme-ai', '--set', 'vertexAI.project=acme-ai')
    assert.equal(res.code, 8, res.stderr)
    assert.match(res.stderr, /vertexAI.*additional properties 'project' not allowed/)
    assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr)
  })
})
