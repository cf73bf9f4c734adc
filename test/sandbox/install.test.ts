// install and status against a real sandbox with the engine simulator: what a user sees and gets.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { describe, it } from 'node:test'
import { GEN, useSandbox, onGeneration, TEST_RESYNC_SECONDS } from '../helpers/sandbox.js'
import { runCli, sandboxEnv, sandboxFlags } from '../helpers/cli.js'
import { httpCode } from '../helpers/sandbox.js'

describe(onGeneration('install and status'), () => {
  const { sandbox, kube } = useSandbox({ engineSettings: { resyncSeconds: TEST_RESYNC_SECONDS } })
  const cli = (args: string[], input?: string) => runCli(args, { env: sandboxEnv(sandbox()), input })
  const statusFlags = () => ['--kubeconfig', sandbox().kubeconfig]

  const nothingInstalled = async () => {
    const { core, crds } = kube()
    await assert.rejects(core.readNamespace({ name: 'krateo-system' }), (e) => httpCode(e) === 404)
    const list = await crds.listCustomResourceDefinition()
    assert.deepEqual(
      list.items.map((c) => c.metadata!.name).filter((n) => n!.includes('krateo')),
      [],
    )
  }

  it('status on a bare cluster says NotInstalled and exits 10', async () => {
    const res = await cli(['status', ...statusFlags(), '-o', 'json'])
    assert.equal(res.code, 10)
    const doc = JSON.parse(res.stdout) as { phase: string; schemaVersion: number; components: unknown[] }
    assert.equal(doc.phase, 'NotInstalled')
    assert.equal(doc.schemaVersion, 1)
    assert.deepEqual(doc.components, [])
    const text = await cli(['status', ...statusFlags()])
    assert.match(text.stdout, /NotInstalled/)
    assert.match(text.stdout, /krateo-installer install/)
  })

  it('--dry-run prints the plan (objects, DAG layers, versions) and writes nothing', async () => {
    const res = await cli(['install', ...sandboxFlags(sandbox()), '--exposure', 'LoadBalancer', '--dry-run'])
    assert.equal(res.code, 0, res.stderr)
    assert.match(res.stdout, /Plan: install installer 0\.2\.53/)
    assert.match(res.stdout, /CustomResourceDefinition\/compositiondefinitions\.core\.krateo\.io/)
    assert.match(res.stdout, /layer 0 +authn-crd +0\.4\.0 +platform +enabled/)
    assert.match(res.stdout, /layer 3 +portal +0\.9\.0 +platform +enabled +after frontend/)
    assert.match(res.stdout, /kagent +0\.6\.2 +agents +disabled/)
    assert.match(res.stdout, /nothing was changed/)
    await nothingInstalled()
  })

  it('refuses bad input with one line, a documented exit code, and changes nothing', async () => {
    const sb = sandbox()
    const cases: [string[], number, RegExp][] = [
      [['install', '--bogus'], 2, /Nonexistent flag: --bogus/],
      [
        ['install', ...sandboxFlags(sb), '--exposure', 'Ingress'],
        2,
        /Expected --exposure=Ingress to be one of: NodePort, LoadBalancer/,
      ],
      [
        ['install', ...sandboxFlags(sb), '--feature', 'agents=yes'],
        2,
        /--feature "agents=yes" is not name=true\|false/,
      ],
      [['install', ...sandboxFlags(sb), '--timeout', 'soon'], 2, /--timeout "soon" is not a duration/],
      [
        ['install', ...sandboxFlags(sb), '-f', '/nonexistent/values.yaml'],
        2,
        /values file \/nonexistent\/values.yaml does not exist/,
      ],
      [
        ['install', ...sandboxFlags(sb), '--set', 'exposure.type=Ingress'],
        8,
        /rejected by the installer chart's values\.schema\.json: at '\/exposure\/type': value must be one of 'NodePort', 'LoadBalancer'/,
      ],
      [['install', ...sandboxFlags(sb, '9.9.9')], 8, /cannot be resolved/],
      [
        ['install', ...sandboxFlags(sb), '--feature', 'observability=false', '--feature', 'agents=true'],
        8,
        /"clickhouse-mcp-server" is enabled but depends on "krateo-clickstack", whose feature is off/,
      ],
      [
        ['install', ...sandboxFlags(sb), '--helm', '/nonexistent/helm'],
        4,
        /helm not found \(looked for "\/nonexistent\/helm"\)/,
      ],
      [
        ['install', ...sandboxFlags(sb, '0.2.53', '/nonexistent/kubeconfig')],
        3,
        /kubeconfig \/nonexistent\/kubeconfig does not exist/,
      ],
      [
        ['install', ...sandboxFlags(sb), '--context', 'prod'],
        3,
        /context "prod" is not in the kubeconfig \(known: krateo-sandbox-admin\)/,
      ],
      [
        ['install', ...sandboxFlags(sb), '--registry-username', 'bot'],
        2,
        /--registry-username needs --registry-password-stdin/,
      ],
      [['status', '--kubeconfig', '/nonexistent/kubeconfig'], 3, /does not exist/],
    ]
    for (const [args, code, message] of cases) {
      const res = await cli(args)
      assert.equal(res.code, code, `${args.join(' ')}: ${res.stderr}`)
      const lines = res.stderr.trim().split('\n')
      assert.equal(lines.length, 1, `one line for ${args.join(' ')}: ${res.stderr}`)
      assert.match(lines[0]!, /^Error: /)
      assert.match(lines[0]!, message)
      assert.doesNotMatch(res.stderr, /\n\s+at \S+ \(/, 'no stack trace without --verbose')
    }
    await nothingInstalled()
  })

  it('refuses a user without the rights, naming what is missing, before any change', async () => {
    const alice = sandbox().mintUserKubeconfig('alice-no-rights')
    const res = await cli(['install', ...sandboxFlags(sandbox(), '0.2.53', alice)])
    assert.equal(res.code, 5, res.stderr)
    assert.match(
      res.stderr,
      /^Error: missing permissions for context "alice-no-rights": create namespaces, create customresourcedefinitions\.apiextensions\.k8s\.io/,
    )
    await nothingInstalled()
  })

  it('installs to Ready with LoadBalancer exposure, wires the portal config and prints the endpoints', async () => {
    const res = await cli(['install', ...sandboxFlags(sandbox()), '--exposure', 'LoadBalancer', '--timeout', '6m'])
    assert.equal(res.code, 0, res.stdout + res.stderr)
    // Plain progress lines in CI: timestamped, a line per component change, each bootstrap step named.
    assert.match(res.stdout, /^\d\d:\d\d:\d\d ✔ Preflight \(read-only\)/m)
    assert.match(res.stdout, /✔ Install the bootstrap release "krateo"/)
    assert.match(res.stdout, /✔ Wait for CRD installers\.composition\.krateo\.io to serve v0-2-53/)
    assert.match(res.stdout, /✔ Apply the Installer CR \(krateo-system\/installer\) — created/)
    // Which of its dependencies frontend still waits for when its own CRD is served depends on the machine's
    // pace; the line names those, in the chart's order.
    assert.match(res.stdout, / frontend: waiting for (frontend-crd|authn|snowplow)(, (authn|snowplow))*$/m)
    assert.match(res.stdout, /✔ Follow the self-reconcile: Ready — 14\/14 Ready/)
    assert.match(res.stdout, /Portal: http:\/\/198\.51\.100\.\d+:8080/)
    assert.match(res.stdout, /Admin password: kubectl get secret admin-password -n krateo-system/)

    const { core, custom } = kube()
    const authn = await core.readNamespacedService({ name: 'authn', namespace: 'krateo-system' })
    const authnIP = authn.status?.loadBalancer?.ingress?.[0]?.ip
    assert.match(authnIP ?? '', /^198\.51\.100\./)
    const frontend = (await custom.getNamespacedCustomObject({
      group: 'composition.krateo.io',
      version: 'v0-24-0',
      namespace: 'krateo-system',
      plural: 'frontends',
      name: 'frontend',
    })) as { spec: { config: Record<string, string>; service: { type: string } } }
    assert.equal(frontend.spec.config.AUTHN_API_BASE_URL, `http://${authnIP}:8082`)
    assert.match(frontend.spec.config.SNOWPLOW_API_BASE_URL ?? '', /^http:\/\/198\.51\.100\.\d+:8081$/)
    assert.equal(frontend.spec.service.type, 'LoadBalancer')
    const secret = await core.readNamespacedSecret({ name: 'admin-password', namespace: 'krateo-system' })
    assert.ok(secret.data?.password)
    assert.ok(
      !res.stdout.includes(Buffer.from(secret.data!.password!, 'base64').toString()),
      'the admin password is never printed',
    )
  })

  it('status reports Ready with every component, the endpoints, and exits 0 (json and table)', async () => {
    const res = await cli(['status', ...statusFlags(), '-o', 'json'])
    assert.equal(res.code, 0, res.stderr)
    const doc = JSON.parse(res.stdout) as {
      phase: string
      ready: number
      total: number
      installerVersion: string
      components: { name: string; stage: string; enabled: boolean; ready: { status: string } | null }[]
      endpoints: { component: string; url: string }[]
      portalUrl: string
    }
    assert.equal(doc.phase, 'Ready')
    assert.equal(doc.installerVersion, '0.2.53')
    assert.equal((doc as unknown as { engineGeneration: string }).engineGeneration, GEN)
    assert.deepEqual([doc.ready, doc.total], [14, 14])
    assert.equal(doc.components.length, 18)
    assert.deepEqual(
      doc.components.filter((c) => !c.enabled).map((c) => c.stage),
      ['disabled', 'disabled', 'disabled', 'disabled'],
    )
    assert.ok(doc.components.filter((c) => c.enabled).every((c) => c.stage === 'ready' && c.ready?.status === 'True'))
    assert.deepEqual(doc.endpoints.map((e) => e.component).sort(), [
      'authn',
      'frontend',
      'krateo-sse-proxy',
      'snowplow',
    ])
    assert.equal(doc.portalUrl, doc.endpoints.find((e) => e.component === 'frontend')!.url)
    const table = await cli(['status', ...statusFlags()])
    assert.equal(table.code, 0)
    // The engine generation, as the cluster shows it (webhook: S; admission policy: N).
    assert.match(
      table.stdout,
      new RegExp(`Krateo platform in krateo-system: Ready \\(installer 0\\.2\\.53, engine Gen ${GEN}\\)`),
    )
    assert.match(table.stdout, /hyperdx-provider +oasgen +0\.2\.0 +Ready +True Available +True ReconcileSuccess/)
    const yaml = await cli(['status', ...statusFlags(), '-o', 'yaml'])
    assert.match(yaml.stdout, /^phase: Ready$/m)
  })

  it('re-running install on a Ready platform is a no-op that says so', async () => {
    const res = await cli(['install', ...sandboxFlags(sandbox()), '--exposure', 'LoadBalancer'])
    assert.equal(res.code, 0, res.stderr)
    assert.match(res.stdout, /Already installed and Ready: installer 0\.2\.53 in krateo-system; nothing to do/)
    assert.doesNotMatch(res.stdout, /Install the bootstrap release/)
  })

  it("with the engine's real 3-minute resync, install renders layer after layer by nudging the watched annotation, never by restarting a cdc", async () => {
    const gone = await cli(['uninstall', '--kubeconfig', sandbox().kubeconfig, '--timeout', '3m'])
    assert.equal(gone.code, 0, gone.stdout + gone.stderr)
    await sandbox().setEngineSettings({ resyncSeconds: 180 })
    try {
      const started = Date.now()
      const res = await cli(['install', ...sandboxFlags(sandbox()), '--exposure', 'LoadBalancer', '--timeout', '150s'])
      assert.equal(res.code, 0, res.stdout + res.stderr)
      assert.ok(Date.now() - started < 150_000, 'four dependency layers, far less than a resync each')
      assert.match(res.stdout, /nudged the installer's cdc \(krateo\.io\/paused, a watched annotation\) so it renders /)
      const deployments = (await kube().apps.listNamespacedDeployment({ namespace: 'krateo-system' })).items
      const restarted = deployments.filter(
        (d) => d.spec?.template.metadata?.annotations?.['kubectl.kubernetes.io/restartedAt'],
      )
      assert.deepEqual(
        restarted.map((d) => d.metadata?.name),
        [],
        'no controller was restarted',
      )
      const installer = (await kube().custom.getNamespacedCustomObject({
        group: 'composition.krateo.io',
        version: 'v0-2-53',
        namespace: 'krateo-system',
        plural: 'installers',
        name: 'installer',
      })) as { metadata: { annotations?: Record<string, string> } }
      assert.equal(
        installer.metadata.annotations?.['krateo.io/paused'],
        undefined,
        'a nudge never pauses, and leaves no trace',
      )
    } finally {
      await sandbox().setEngineSettings({ resyncSeconds: TEST_RESYNC_SECONDS })
    }
  })

  it('adopts a platform installed by plain helm install under another name (the chart\'s docs: "installer"), and uninstall removes that release', async () => {
    const gone = await cli(['uninstall', '--kubeconfig', sandbox().kubeconfig, '--timeout', '3m'])
    assert.equal(gone.code, 0, gone.stdout + gone.stderr)
    const helmEnv = { ...process.env, ...sandbox().helmEnv() }
    // The chart's own path has no nudges: its hook waits while every dependency layer waits for a resync of the
    // Installer (only the installer's cdc resyncs fast: the others would only run helm more often).
    await sandbox().setEngineSettings({ cdcResyncSeconds: { installers: 10 } })
    execFileSync(
      sandbox().helm,
      [
        'install',
        'installer',
        `oci://${sandbox().registry}/charts/installer`,
        '--version',
        '0.2.53',
        '--plain-http',
        '-n',
        'krateo-system',
        '--create-namespace',
        '--set',
        'bootstrap.coreProvider.enabled=true',
        '--set',
        'exposure.type=LoadBalancer',
        '--wait',
        '--timeout',
        '3m',
      ],
      { env: helmEnv, stdio: 'ignore' },
    )
    await sandbox().setEngineSettings({ cdcResyncSeconds: {} })
    const res = await cli(['install', ...sandboxFlags(sandbox()), '--timeout', '5m'])
    assert.equal(res.code, 0, res.stdout + res.stderr)
    assert.match(
      res.stdout,
      /a platform installed as helm release "installer" is here: install adopts it, keeping its values/,
    )
    assert.match(res.stdout, /✔ Install the bootstrap release "installer"/)
    const releases = () =>
      (
        JSON.parse(
          execFileSync(sandbox().helm, ['list', '-n', 'krateo-system', '-o', 'json'], { env: helmEnv }).toString(),
        ) as { name: string }[]
      ).map((r) => r.name)
    assert.ok(
      releases().includes('installer') && !releases().includes('krateo'),
      `one bootstrap release, the adopted one: ${releases().join(', ')}`,
    )
    const values = execFileSync(sandbox().helm, ['get', 'values', 'installer', '-n', 'krateo-system', '-o', 'json'], {
      env: helmEnv,
    }).toString()
    assert.equal(
      JSON.parse(values).exposure?.type,
      'LoadBalancer',
      'the release keeps the values it was installed with',
    )
    const status = await cli(['status', '--kubeconfig', sandbox().kubeconfig, '-o', 'json'])
    assert.equal(JSON.parse(status.stdout).phase, 'Ready')
    const un = await cli(['uninstall', '--kubeconfig', sandbox().kubeconfig, '--timeout', '3m'])
    assert.equal(un.code, 0, un.stdout + un.stderr)
    assert.match(un.stdout, /Uninstalling Krateo \(release installer\)/)
    assert.match(un.stdout, /installer uninstalled \(hooks skipped\)/)
    assert.deepEqual(
      releases().filter((r) => r === 'installer' || r === 'krateo'),
      [],
    )
  })
})
