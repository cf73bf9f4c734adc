// Ready means running, for the portal: with cloud load balancers that take a while to get their IPs, the
// chart wires the frontend only at a render after the IPs exist. install waits for the wiring and nudges the
// installer once more for it (the engine's resync is set far beyond the test's reach, so only a nudge helps).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { onGeneration, useSandbox } from '../helpers/sandbox.js'
import { cliFor, sandboxFlags } from '../helpers/cli.js'

describe(onGeneration('exposure with slow load balancers'), () => {
  const { sandbox, kube } = useSandbox({ engineSettings: { resyncSeconds: 600, loadBalancerDelaySeconds: 25 } })
  const { cli } = cliFor(sandbox)

  it('install ends only when the portal is wired to every peer, nudging once more when the IPs came after the render', async () => {
    const started = Date.now()
    const res = await cli([
      'install',
      ...sandboxFlags(sandbox()),
      '--exposure',
      'LoadBalancer',
      '--timeout',
      '5m',
      '--json',
    ])
    assert.equal(res.code, 0, res.stderr.slice(-3000))
    assert.ok(Date.now() - started < 300_000, 'far sooner than one 10-minute resync')
    const progress = res.stderr
      .split('\n')
      .filter((l) => /frontend:|nudged/.test(l))
      .join('\n')
    assert.match(
      res.stderr,
      /frontend: running, waiting for its config to be wired \(waiting for the LoadBalancer IP of (authn|snowplow|krateo-sse-proxy)/,
      progress,
    )
    assert.match(res.stderr, /nudged the installer's cdc .* so it renders frontend now/, progress)
    const doc = JSON.parse(res.stdout) as {
      status: {
        phase: string
        portalUrl: string | null
        notes: string[]
        components: { name: string; enabled: boolean; stage: string; detail: string }[]
      }
    }
    const notReady = doc.status.components
      .filter((c) => c.enabled && c.stage !== 'ready')
      .map((c) => `${c.name}: ${c.stage} (${c.detail})`)
    assert.equal(doc.status.phase, 'Ready', `${notReady.join('\n')}\n${res.stderr.split('\n').slice(-25).join('\n')}`)
    assert.match(doc.status.portalUrl ?? '', /^http:\/\/198\.51\.100\.\d+:8080$/)
    assert.deepEqual(doc.status.notes, [])
    const frontend = (await kube().custom.getNamespacedCustomObject({
      group: 'composition.krateo.io',
      version: 'v0-24-0',
      namespace: 'krateo-system',
      plural: 'frontends',
      name: 'frontend',
    })) as { spec: { config: Record<string, string> } }
    assert.match(frontend.spec.config.AUTHN_API_BASE_URL ?? '', /^http:\/\/198\.51\.100\.\d+:8082$/)
    assert.match(frontend.spec.config.SNOWPLOW_API_BASE_URL ?? '', /^http:\/\/198\.51\.100\.\d+:8081$/)
  })
})
