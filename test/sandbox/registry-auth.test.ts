// A private registry, as users have them: a second registry in the sandbox that requires a login
// (distribution's htpasswd auth) and holds the 0.2.53 line under /private. Without credentials the CLI cannot
// pull the installer chart and says which flag fixes it; with the chart from elsewhere but the components from
// there, core-provider cannot pull and install says so; with --registry-username the chart's real
// registryAuth.passwordRef points every CompositionDefinition at the one Secret the CLI wrote.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { gunzipSync } from 'node:zlib'
import { onGeneration, useSandbox, TEST_RESYNC_SECONDS } from '../helpers/sandbox.js'
import { runCli, sandboxEnv } from '../helpers/cli.js'

const PASSWORD = 's3cret-registry-pass'

describe(onGeneration('install from a private registry'), () => {
  const { sandbox, kube } = useSandbox({
    engineSettings: { resyncSeconds: TEST_RESYNC_SECONDS },
    privateRegistry: { username: 'bot', password: PASSWORD },
  })
  const privateRepo = () => `oci://${sandbox().privateRegistry}/private`
  const install = (chartRepo: string, extra: string[], input?: string) =>
    runCli(
      [
        'install',
        '--kubeconfig',
        sandbox().kubeconfig,
        '--chart',
        `${chartRepo}/installer`,
        '--version',
        '0.2.53',
        '--plain-http',
        '--set',
        `ociRepo=${privateRepo()}`,
        '--exposure',
        'LoadBalancer',
        ...extra,
      ],
      { env: sandboxEnv(sandbox()), input },
    )

  it('without credentials the installer chart cannot be pulled: one line naming the flag, nothing changed', async () => {
    const res = await install(privateRepo(), ['--timeout', '40s'])
    assert.equal(res.code, 8, res.stdout + res.stderr)
    assert.match(
      res.stderr,
      /^Error: the registry 127\.0\.0\.1:\d+ needs a login to give the installer chart \(.*(basic credential not found|401).*\); pass --registry-username and the password on stdin with --registry-password-stdin$/m,
    )
    const ns = await kube()
      .core.readNamespace({ name: 'krateo-system' })
      .then(
        () => true,
        () => false,
      )
    const releases = ns
      ? (await kube().core.listNamespacedSecret({ namespace: 'krateo-system', labelSelector: 'owner=helm' })).items
      : []
    assert.deepEqual(releases, [], 'no helm release was made')
  })

  it('without credentials for the components core-provider cannot pull, and install says so', async () => {
    const res = await install(`oci://${sandbox().registry}/charts`, ['--timeout', '40s'])
    assert.equal(res.code, 6, res.stdout + res.stderr)
    assert.match(res.stdout + res.stderr, /basic credential not found|401 Unauthorized/)
  })

  it('re-run with --registry-username: the chart comes with a login, the password reaches every CompositionDefinition through one Secret, and the platform runs', async () => {
    const res = await install(
      privateRepo(),
      ['--registry-username', 'bot', '--registry-password-stdin', '--timeout', '5m'],
      PASSWORD,
    )
    assert.equal(res.code, 0, res.stdout + res.stderr)
    assert.ok(!(res.stdout + res.stderr).includes(PASSWORD), 'the password is never printed')
    const cds = (
      (await kube().custom.listNamespacedCustomObject({
        group: 'core.krateo.io',
        version: 'v1alpha1',
        namespace: 'krateo-system',
        plural: 'compositiondefinitions',
      })) as {
        items: {
          metadata: { name: string }
          spec: { chart: { credentials?: { username: string; passwordRef: Record<string, string> } } }
        }[]
      }
    ).items
    assert.ok(cds.length > 10)
    for (const cd of cds)
      assert.deepEqual(
        cd.spec.chart.credentials,
        { username: 'bot', passwordRef: { name: 'krateo-registry-auth', namespace: 'krateo-system', key: 'password' } },
        cd.metadata.name,
      )
    const secrets = (await kube().core.listSecretForAllNamespaces()).items
    // helm's release records are gzipped inside: read those too (the values helm keeps must not hold it).
    const plain = (s: (typeof secrets)[number], v: string) => {
      const once = Buffer.from(v, 'base64')
      return s.type === 'helm.sh/release.v1'
        ? gunzipSync(Buffer.from(once.toString(), 'base64')).toString()
        : once.toString()
    }
    assert.ok(
      secrets.some((s) => s.type === 'helm.sh/release.v1'),
      'helm release records are among those read',
    )
    const holding = secrets.filter((s) => Object.values(s.data ?? {}).some((v) => plain(s, v).includes(PASSWORD)))
    assert.deepEqual(
      holding.map((s) => `${s.metadata!.namespace}/${s.metadata!.name}`),
      ['krateo-system/krateo-registry-auth'],
      'the password is in one Secret only',
    )
  })
})
