// A private registry (the engine's registryAuth knob: charts under /private/ are pulled only with the CD's
// credentials): without --registry-username core-provider cannot pull and install says why; with it, the
// chart's real registryAuth.passwordRef points every CompositionDefinition at the one Secret the CLI wrote.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { gunzipSync } from 'node:zlib'
import { onGeneration, useSandbox } from '../helpers/sandbox.js'
import { runCli, sandboxEnv } from '../helpers/cli.js'

const PASSWORD = 's3cret-registry-pass'

describe(onGeneration('install from a private registry'), () => {
  const { sandbox, kube } = useSandbox({ engineSettings: { resyncSeconds: 5, registryAuth: { path: 'private', username: 'bot', password: PASSWORD } } })
  const args = () => ['install', '--kubeconfig', sandbox().kubeconfig, '--chart', `oci://${sandbox().registry}/private/installer`, '--version', '0.2.53', '--plain-http',
    '--set', `ociRepo=oci://${sandbox().registry}/private`, '--exposure', 'LoadBalancer']
  const cli = (extra: string[], input?: string) => runCli([...args(), ...extra], { env: sandboxEnv(sandbox()), input })

  it('without credentials core-provider cannot pull, and install says so', async () => {
    const res = await cli(['--timeout', '40s'])
    assert.equal(res.code, 6, res.stdout + res.stderr)
    assert.match(res.stdout + res.stderr, /401 Unauthorized \(no credentials: spec\.chart\.credentials\.passwordRef is empty\)/)
  })

  it('with --registry-username the password reaches every CompositionDefinition through one Secret, and the platform runs', async () => {
    const res = await cli(['--registry-username', 'bot', '--registry-password-stdin', '--timeout', '5m'], PASSWORD)
    assert.equal(res.code, 0, res.stdout + res.stderr)
    assert.ok(!(res.stdout + res.stderr).includes(PASSWORD), 'the password is never printed')
    const cds = (await kube().custom.listNamespacedCustomObject({ group: 'core.krateo.io', version: 'v1alpha1', namespace: 'krateo-system', plural: 'compositiondefinitions' }) as { items: { metadata: { name: string }; spec: { chart: { credentials?: { username: string; passwordRef: Record<string, string> } } } }[] }).items
    assert.ok(cds.length > 10)
    for (const cd of cds) assert.deepEqual(cd.spec.chart.credentials, { username: 'bot', passwordRef: { name: 'krateo-registry-auth', namespace: 'krateo-system', key: 'password' } }, cd.metadata.name)
    const secrets = (await kube().core.listSecretForAllNamespaces()).items
    // helm's release records are gzipped inside: read those too (the values helm keeps must not hold it).
    const plain = (s: (typeof secrets)[number], v: string) => {
      const once = Buffer.from(v, 'base64')
      return s.type === 'helm.sh/release.v1' ? gunzipSync(Buffer.from(once.toString(), 'base64')).toString() : once.toString()
    }
    assert.ok(secrets.some((s) => s.type === 'helm.sh/release.v1'), 'helm release records are among those read')
    const holding = secrets.filter((s) => Object.values(s.data ?? {}).some((v) => plain(s, v).includes(PASSWORD)))
    assert.deepEqual(holding.map((s) => `${s.metadata!.namespace}/${s.metadata!.name}`), ['krateo-system/krateo-registry-auth'], 'the password is in one Secret only')
  })
})
