// What a kubectl or helm user expects of any CLI, proved end to end with the built CLI: every flag value
// checked before the first write, errors as one line (and as JSON with --json), colours off on request, help
// and typo suggestions, a hung API server failing in bounded time, version and check, status --wait.
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:net'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { parse, stringify } from 'yaml'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { eventually, httpCode, useSandbox, TEST_RESYNC_SECONDS } from '../helpers/sandbox.js'
import { execFileSync } from 'node:child_process'
import { repo, runCli, sandboxEnv, sandboxFlags } from '../helpers/cli.js'
import { scratchDir } from '../helpers/scratch.js'

describe('conventions', () => {
  const { sandbox, kube } = useSandbox({ engineSettings: { resyncSeconds: TEST_RESYNC_SECONDS } })
  const cli = (args: string[], env: Record<string, string> = {}) =>
    runCli(args, { env: { ...sandboxEnv(sandbox()), ...env } })
  const kc = () => ['--kubeconfig', sandbox().kubeconfig]
  const nothingWritten = async () => {
    await assert.rejects(
      kube().crds.readCustomResourceDefinition({ name: 'compositiondefinitions.core.krateo.io' }),
      (e) => httpCode(e) === 404,
      'no CRD was created',
    )
    await assert.rejects(
      kube().core.readNamespace({ name: 'krateo-system' }),
      (e) => httpCode(e) === 404,
      'no namespace was created',
    )
  }

  let hung: Server
  let hungPort = 0
  before(async () => {
    // An API server that accepts connections and never answers.
    hung = createServer(() => undefined)
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', () => r()))
    hungPort = (hung.address() as { port: number }).port
  })
  after(() => {
    hung.close()
  })

  it('refuses bad flag values before anything is written: namespace, durations, unknown features', async () => {
    const cases: [string[], RegExp][] = [
      [['-n', 'Bad_Namespace'], /^Error: -n\/--namespace "Bad_Namespace" is not a valid namespace name; /m],
      [['--timeout', '0s'], /^Error: --timeout "0s" must be longer than 0s; /m],
      [['--timeout', 'soon'], /^Error: --timeout "soon" is not a duration; use e\.g\. 90s, 15m, 1h30m or 5m0s$/m],
      [
        ['--feature', 'nosuch=true'],
        /^Error: --feature nosuch: installer 0\.2\.53 has no such feature; use one of: .*agents.*observability/m,
      ],
    ]
    for (const [flags, message] of cases) {
      const res = await cli(['install', ...sandboxFlags(sandbox()), '--exposure', 'LoadBalancer', ...flags])
      assert.equal(res.code, 2, `${flags.join(' ')}: ${res.stdout}${res.stderr}`)
      assert.match(res.stderr, message)
    }
    await nothingWritten()
  })

  it('with --json a failure is also a JSON document on stdout, with the exit code', async () => {
    const res = await cli(['install', ...sandboxFlags(sandbox()), '--json', '--timeout', '0s'])
    assert.equal(res.code, 2)
    assert.deepEqual(JSON.parse(res.stdout), {
      error: { message: '--timeout "0s" must be longer than 0s', hint: 'use e.g. 90s, 15m or 1h30m' },
      exitCode: 2,
    })
    const unknown = await cli(['status', ...kc(), '--json', '--bogus'])
    assert.equal(unknown.code, 2)
    assert.equal(JSON.parse(unknown.stdout).exitCode, 2)
  })

  it('an API server that never answers fails with exit 3 in bounded time', async () => {
    const dir = scratchDir('hung-')
    const path = join(dir, 'kubeconfig')
    writeFileSync(
      path,
      `apiVersion: v1\nkind: Config\ncurrent-context: hung\nclusters: [{name: hung, cluster: {server: "https://127.0.0.1:${hungPort}", insecure-skip-tls-verify: true}}]\nusers: [{name: hung, user: {token: t}}]\ncontexts: [{name: hung, context: {cluster: hung, user: hung}}]\n`,
    )
    const started = Date.now()
    const res = await cli(['status', '--kubeconfig', path], { KRATEO_INSTALLER_CONNECT_TIMEOUT_MS: '3000' })
    assert.equal(res.code, 3, res.stderr)
    assert.match(
      res.stderr,
      /^Error: cannot reach the cluster at https:\/\/127\.0\.0\.1:\d+: no answer within 3s; check that the cluster is running/m,
    )
    // Bounded, not fast: a hang would last until the test's own timeout. The bound leaves room for a loaded machine.
    assert.ok(Date.now() - started < 60_000, `gave up after ${Date.now() - started} ms`)
  })

  it('takes credentials from a kubeconfig exec plugin, as kubectl does (helm gets the same kubeconfig)', async () => {
    const saKubeconfig = await sandbox().mintServiceAccountKubeconfig('default', 'exec-user')
    await kube().rbac.createClusterRoleBinding({
      body: {
        metadata: { name: 'exec-user-admin' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
        subjects: [{ kind: 'ServiceAccount', name: 'exec-user', namespace: 'default' }],
      },
    })
    const sa = parse(readFileSync(saKubeconfig, 'utf8')) as {
      clusters: { cluster: Record<string, string> }[]
      users: { user: { token: string } }[]
    }
    const dir = scratchDir('exec-')
    const plugin = join(dir, 'credential-plugin.sh')
    writeFileSync(
      plugin,
      `#!/bin/sh\necho '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"${sa.users[0]!.user.token}"}}'\n`,
      { mode: 0o755 },
    )
    const path = join(dir, 'kubeconfig')
    writeFileSync(
      path,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        'current-context': 'exec',
        clusters: [{ name: 'exec', cluster: sa.clusters[0]!.cluster }],
        users: [
          {
            name: 'exec',
            user: {
              exec: { apiVersion: 'client.authentication.k8s.io/v1', command: plugin, interactiveMode: 'Never' },
            },
          },
        ],
        contexts: [{ name: 'exec', context: { cluster: 'exec', user: 'exec' } }],
      }),
    )
    const status = await cli(['status', '--kubeconfig', path, '-o', 'json'])
    assert.ok([0, 10].includes(status.code), status.stderr)
    assert.ok(JSON.parse(status.stdout).phase, "the API answered the plugin's token")
    // uninstall asks helm for the namespace's releases: helm, too, authenticates through the plugin.
    const un = await cli(['uninstall', '--kubeconfig', path])
    assert.equal(un.code, 0, un.stdout + un.stderr)
    assert.match(un.stdout, /Nothing to uninstall in krateo-system/)
  })

  it('help, -h, typo suggestions, version; NO_COLOR and --no-color keep escape codes out', async () => {
    const help = await cli(['help', 'uninstall'])
    assert.equal(help.code, 0, help.stderr)
    assert.match(help.stdout, /--purge/)
    const short = await cli(['status', '-h'])
    assert.equal(short.code, 0)
    assert.match(short.stdout, /--wait/)
    const typo = await cli(['statsu', ...kc()])
    assert.equal(typo.code, 2)
    assert.equal(
      typo.stderr,
      'Error: "statsu" is not a krateo-installer command; did you mean "status"? (krateo-installer help lists them all)\n',
    )
    const version = await cli(['version', ...kc(), '--json'])
    assert.equal(version.code, 0, version.stderr)
    const v = JSON.parse(version.stdout)
    assert.match(v.cli, /^\d+\.\d+\.\d+/)
    assert.match(v.helm, /^v3\./)
    assert.match(v.kubernetes, /^v1\./)
    assert.equal(v.installer, 'not installed')
    const escape = String.fromCharCode(27) + '['
    const coloured = await cli(['status', ...kc()], { FORCE_COLOR: '1', NO_COLOR: '' })
    assert.ok((coloured.stdout + coloured.stderr).includes(escape), 'colours are there to turn off')
    for (const [args, env] of [
      [[], { NO_COLOR: '1', FORCE_COLOR: '1' }],
      [['--no-color'], { FORCE_COLOR: '1', NO_COLOR: '' }],
    ] as [string[], Record<string, string>][]) {
      const res = await cli(['status', ...kc(), ...args], env)
      assert.ok(
        !(res.stdout + res.stderr).includes(escape),
        `no escape codes with ${args.join(' ')} ${JSON.stringify(env)}`,
      )
    }
  })

  it('check --pre passes on a fresh cluster; check and status --wait follow an install', async () => {
    const pre = await cli(['check', '--pre', ...sandboxFlags(sandbox())])
    assert.equal(pre.code, 0, pre.stdout + pre.stderr)
    assert.match(
      pre.stdout,
      /✔ cluster reachable: .*\n✔ helm supported: helm v3\.\d+\.\d+\n✔ chart renders and values pass its schema: .*0\.2\.53\n✔ component DAG valid: \d+ components\n✔ permissions: .*\n\nAll checks passed\./,
    )
    const down = await cli(['check', ...kc(), '--json'])
    assert.equal(down.code, 10)
    assert.equal(
      JSON.parse(down.stdout).checks.find((c: { name: string }) => c.name === 'platform installed').ok,
      false,
    )
    // Without install's nudges every dependency layer waits for a resync of the Installer: a short one here.
    await sandbox().setEngineSettings({ cdcResyncSeconds: { installers: 10 } })
    const accepted = await cli(['install', ...sandboxFlags(sandbox()), '--exposure', 'LoadBalancer', '--no-wait'])
    assert.equal(accepted.code, 0, accepted.stdout + accepted.stderr)
    const waited = await cli(['status', ...kc(), '--wait', '--timeout', '5m', '-o', 'json']).finally(() =>
      sandbox().setEngineSettings({ cdcResyncSeconds: {} }),
    )
    assert.equal(waited.code, 0, waited.stderr)
    assert.equal(JSON.parse(waited.stdout).phase, 'Ready')
    assert.match(waited.stderr, /waiting for Ready/)
    const check = await cli(['check', ...kc()])
    assert.equal(check.code, 0, check.stdout + check.stderr)
    assert.match(check.stdout, /✔ engine running: core-provider core-provider available; engine generation S/)
    const short = await cli(['status', ...kc(), '--wait', '--timeout', '1s'])
    assert.equal(short.code, 0, 'already Ready: no wait needed')
  })

  it('SIGTERM (a cancelled CI job) stops at once with exit 9 and gives the lock back; the next run resumes', async () => {
    let seen = ''
    const run = runCli(['uninstall', ...kc()], {
      env: sandboxEnv(sandbox()),
      onStdout: (out) => {
        seen += out
      },
    })
    await eventually('the drain started', async () => /: deleting/.test(seen), 120_000, 50)
    const sent = Date.now()
    run.kill('SIGTERM')
    const stopped = await run
    assert.equal(stopped.code, 9, stopped.stdout + stopped.stderr)
    assert.ok(Date.now() - sent < 5000, `stopped ${Date.now() - sent} ms after SIGTERM`)
    assert.match(
      stopped.stderr,
      /^Error: stopped at once \(SIGTERM\).*; nothing is half-removed; run the same uninstall command again to continue$/m,
    )
    const again = await cli(['uninstall', ...kc(), '--timeout', '3m'])
    assert.equal(again.code, 0, `no lock left behind: ${again.stdout}${again.stderr}`)
    assert.doesNotMatch(again.stderr, /took over/, 'the lock was given back, not taken over')
  })

  it(
    'the single executable (npm run package) runs the same commands without Node.js installed beside it',
    { timeout: 600_000 },
    async () => {
      const built = execFileSync('bash', [join(repo, 'scripts/package.sh')], {
        cwd: repo,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      })
        .trim()
        .split('\n')
        .pop()!
      const exe = join(repo, built)
      // A PATH without node: the executable carries its own.
      const env = { ...process.env, ...sandboxEnv(sandbox()), PATH: '/usr/sbin:/sbin', NO_COLOR: '1', CI: 'true' }
      const run = (args: string[]) => {
        try {
          return {
            code: 0,
            out: execFileSync(exe, args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }),
            err: '',
          }
        } catch (e) {
          const x = e as { status: number; stdout: string; stderr: string }
          return { code: x.status, out: x.stdout, err: x.stderr }
        }
      }
      assert.match(run(['--help']).out, /COMMANDS[\s\S]*uninstall/)
      assert.match(run(['help', 'status']).out, /--wait/)
      const status = run(['status', ...kc(), '-o', 'json'])
      assert.ok([0, 10].includes(status.code), status.err)
      assert.equal(JSON.parse(status.out).schemaVersion, 1)
      const pre = run(['check', '--pre', ...sandboxFlags(sandbox())])
      assert.equal(pre.code, 0, pre.out + pre.err)
      const typo = run(['statsu'])
      assert.equal(typo.code, 2)
      assert.doesNotMatch(run(['version', '--client']).err, /Warning/, 'no warning from the executable itself')
    },
  )

  it('a private registry: the login stays inside the run, the chart gets its real passwordRef, the password lives in one Secret, uninstall removes it', async () => {
    const password = 's3cret-Pa55-for-the-test'
    const res = await runCli(
      [
        'install',
        ...sandboxFlags(sandbox()),
        '--exposure',
        'LoadBalancer',
        '--timeout',
        '5m',
        '--registry-username',
        'CORP\\bot,x',
        '--registry-password-stdin',
      ],
      { env: sandboxEnv(sandbox()), input: password + '\n' },
    )
    assert.equal(res.code, 0, res.stdout + res.stderr)
    assert.ok(!(res.stdout + res.stderr).includes(password), 'never printed')
    const cd = (await kube().custom.getNamespacedCustomObject({
      group: 'core.krateo.io',
      version: 'v1alpha1',
      namespace: 'krateo-system',
      plural: 'compositiondefinitions',
      name: 'authn',
    })) as { spec: { chart: { credentials?: { username: string; passwordRef: Record<string, string> } } } }
    assert.deepEqual(
      cd.spec.chart.credentials,
      {
        username: 'CORP\\bot,x',
        passwordRef: { name: 'krateo-registry-auth', namespace: 'krateo-system', key: 'password' },
      },
      'the username intact, the real passwordRef set',
    )
    const secrets = (await kube().core.listSecretForAllNamespaces()).items
    const holding = secrets
      .filter((x) => Object.values(x.data ?? {}).some((v) => Buffer.from(v, 'base64').toString().includes(password)))
      .map((x) => `${x.metadata?.namespace}/${x.metadata?.name}`)
    assert.deepEqual(holding, ['krateo-system/krateo-registry-auth'], 'the password is in one Secret only')
    const helmRegistry = sandboxEnv(sandbox()).HELM_REGISTRY_CONFIG!
    assert.ok(
      !existsSync(helmRegistry) || !readFileSync(helmRegistry, 'utf8').includes('bot'),
      "the login did not outlive the run in the user's helm registry config",
    )
    const un = await cli(['uninstall', ...kc(), '--timeout', '3m'])
    assert.equal(un.code, 0, un.stdout + un.stderr)
    await assert.rejects(
      kube().core.readNamespacedSecret({ name: 'krateo-registry-auth', namespace: 'krateo-system' }),
      (e) => httpCode(e) === 404,
      'uninstall removed the registry Secret',
    )
  })
})
