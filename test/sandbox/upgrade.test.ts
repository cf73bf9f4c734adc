// upgrade against a real sandbox: 0.2.53 -> 0.2.54 with a runtime edit kept, components moved in place,
// one added and one removed, an interrupted run resumed, feature switches, and what it refuses.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import { parse } from 'yaml'
import { eventually, GEN, useSandbox, onGeneration, whenServed, TEST_RESYNC_SECONDS } from '../helpers/sandbox.js'
import { cliFor, runCli, sandboxEnv, sandboxFlags } from '../helpers/cli.js'
import { interruptedAt } from '../helpers/scenarios.js'

const MergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch)

interface Doc {
  phase: string
  installerVersion: string
  pausedBy: string | null
  components: { name: string; version: string; stage: string; enabled: boolean }[]
}
interface KO {
  metadata: { uid: string; annotations?: Record<string, string> }
  spec: { features: Record<string, boolean> }
  status?: { helmChartVersion?: string }
}

describe(onGeneration('upgrade'), () => {
  const { sandbox, kube } = useSandbox({ engineSettings: { resyncSeconds: TEST_RESYNC_SECONDS } })
  const { cli, kc, freshPlatform } = cliFor(sandbox)
  /** No --chart and no --version: the chart the running installer came from, at the running version. */
  const chartFlags = () => [...kc(), '--plain-http']
  const status = async (): Promise<Doc> => JSON.parse((await cli(['status', ...kc(), '-o', 'json'])).stdout) as Doc
  const revision = () =>
    (
      JSON.parse(
        execFileSync(sandbox().helm, ['list', '-n', 'krateo-system', '-o', 'json'], {
          env: { ...process.env, ...sandbox().helmEnv() },
        }).toString(),
      ) as { name: string; revision: string }[]
    ).find((r) => r.name === 'krateo')?.revision
  const get = async (version: string, plural: string, name: string) =>
    (await kube().custom.getNamespacedCustomObject({
      group: 'composition.krateo.io',
      version,
      namespace: 'krateo-system',
      plural,
      name,
    })) as KO
  const installer = (version: string) => get(version, 'installers', 'installer')
  /** What a failed wait for the prune needs to be understood: the Installer, authn's CD and CRD, the engine's log. */
  const pruneFacts = async (): Promise<string> => {
    const facts = async (what: string, read: () => Promise<unknown>) =>
      `${what}: ${JSON.stringify(await read().catch((e: Error) => e.message))}`
    const engineLog = readFileSync(sandbox().daemon('agent')?.log ?? '/dev/null', 'utf8')
      .split('\n')
      .filter((l) => /installers|authn|LoadBalancer|compositions version/.test(l))
      .slice(-40)
      .join('\n')
    return [
      await facts('Installer', async () => {
        const i = (await installer('v0-2-54')) as KO & { metadata: { labels?: object }; status?: object }
        return { labels: i.metadata.labels, annotations: i.metadata.annotations, status: i.status }
      }),
      await facts('authn CD', async () => {
        const cd = (await kube().custom.getNamespacedCustomObject({
          group: 'core.krateo.io',
          version: 'v1alpha1',
          namespace: 'krateo-system',
          plural: 'compositiondefinitions',
          name: 'authn',
        })) as { spec: object; status?: object }
        return { spec: cd.spec, status: cd.status }
      }),
      await facts('authn CRD versions', async () =>
        (await kube().crds.readCustomResourceDefinition({ name: 'authns.composition.krateo.io' })).spec.versions.map(
          (v) => `${v.name}${v.served ? ' served' : ''}${v.storage ? ' storage' : ''}`,
        ),
      ),
      `engine log (installers, authn):\n${engineLog}`,
    ].join('\n')
  }

  it('refuses when nothing is installed (exit 10) and changes nothing', async () => {
    const res = await cli(['upgrade', ...sandboxFlags(sandbox(), '0.2.54')])
    assert.equal(res.code, 10, res.stderr)
    assert.match(
      res.stderr,
      /^Error: Krateo is not installed in krateo-system \(no Installer CR\); install it with: krateo-installer install/m,
    )
  })

  it('moves 0.2.53 to 0.2.54 in place, keeps a runtime spec.features edit, adds and removes, and resumes after Ctrl-C', async () => {
    await freshPlatform()
    // A runtime edit a platform team makes on the live Installer CR.
    await kube().custom.patchNamespacedCustomObject(
      {
        group: 'composition.krateo.io',
        version: 'v0-2-53',
        namespace: 'krateo-system',
        plural: 'installers',
        name: 'installer',
        body: { spec: { features: { oasgen: false } } },
      },
      MergePatch,
    )
    // The engine drains the switched-off feature on its own, a layer per render of the Installer (no CLI nudges
    // it); only the installer's cdc resyncs fast meanwhile, and the upgrade starts from the settled platform.
    await sandbox().setEngineSettings({ cdcResyncSeconds: { installers: 10 } })
    await eventually(
      'the runtime edit settled',
      async () => {
        const s = await status()
        return s.phase === 'Ready' && s.components.find((c) => c.name === 'oasgen-provider')?.stage === 'disabled'
      },
      180_000,
      1000,
    )
    await sandbox().setEngineSettings({ cdcResyncSeconds: {} })
    const before = {
      authn: (await get('v0-22-0', 'authns', 'authn')).metadata.uid,
      frontend: (await get('v0-24-0', 'frontends', 'frontend')).metadata.uid,
    }
    const rev = revision()

    const dry = await cli(['upgrade', ...sandboxFlags(sandbox(), '0.2.54'), '--dry-run'])
    assert.equal(dry.code, 0, dry.stdout + dry.stderr)
    assert.match(dry.stdout, /Plan: upgrade installer 0\.2\.53 -> 0\.2\.54/)
    assert.match(dry.stdout, /authn +0\.22\.0 -> 0\.22\.1/)
    assert.match(dry.stdout, /events-presenter +added \(0\.1\.0\)/)
    assert.match(dry.stdout, /otel-collector-daemonset +removed/)
    assert.match(dry.stdout, /kept as running: .*oasgen=false/)
    assert.match(dry.stdout, /nothing was changed/)
    if (GEN === 'N')
      assert.match(
        dry.stdout,
        /Gen N: core-provider prunes versions nothing references, so the installer's render moves/,
      )
    assert.equal(revision(), rev, 'the dry run did not touch the bootstrap release')
    assert.notEqual(
      (await installer('v0-2-53')).metadata.annotations?.['krateo.io/paused'],
      'true',
      'nor the Installer CR',
    )
    assert.equal((await status()).installerVersion, '0.2.53')

    // A helm run that fails before it writes a revision (the registry cannot be reached by then) changes nothing:
    // the pause set for it is taken back. A real helm, whose upgrade pulls from a closed loopback port.
    const dir = mkdtempSync(join(tmpdir(), 'helm-unreachable-'))
    try {
      const helm = join(dir, 'helm')
      writeFileSync(
        helm,
        `#!/usr/bin/env bash\nif [ "$1" = upgrade ]; then set -- "\${@//${sandbox().registry}/127.0.0.1:9}"; fi\nexec ${sandbox().helm} "$@"\n`,
      )
      chmodSync(helm, 0o755)
      const failed = await runCli(['upgrade', ...sandboxFlags(sandbox(), '0.2.54'), '--yes'], {
        env: { ...sandboxEnv(sandbox()), HELM_BIN: helm },
      })
      assert.equal(failed.code, 8, failed.stdout + failed.stderr)
      assert.match(
        failed.stderr,
        /127\.0\.0\.1:9.*nothing was changed \(the release is still at revision \d+, the Installer is unpaused\)$/m,
      )
      assert.equal(revision(), rev)
      const annotations = (await installer('v0-2-53')).metadata.annotations ?? {}
      assert.deepEqual(
        [annotations['krateo.io/paused'], annotations['krateo-installer/upgrade-to']],
        [undefined, undefined],
        'the Installer is as it was',
      )
      // The cdc sees the unpause at once (a watched annotation) and reports Ready again.
      await eventually(
        'the platform runs on as before',
        async () => {
          const after = await status()
          return after.phase === 'Ready' && after.installerVersion === '0.2.53' && after.pausedBy === null
        },
        // One render of the installer after the unpause; on a loaded machine one takes up to half a minute.
        180_000,
      )
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }

    // Gen S: the CLI moves definitions ahead; Gen N: the installer's own render does (see stagedLayers).
    await interruptedAt(
      { cli },
      ['upgrade', ...sandboxFlags(sandbox(), '0.2.54')],
      {
        what: 'the upgrade is under way',
        line: GEN === 'S' ? /▶ Move 4 component definitions/ : /▶ Apply the installer CompositionDefinition/,
        timeoutMs: 120_000,
      },
      /^Error: interrupted; run the same upgrade command again to resume \(until then a paused Installer shows as Upgrading in status\)$/m,
    )
    assert.equal((await status()).phase, 'Upgrading')
    assert.match(
      (await status()).pausedBy ?? '',
      /^paused by krateo-installer upgrade at \S+: re-run that command to resume$/,
    )

    // A failure that is not Ctrl-C (here: out of time) leaves it resumable too, and says so.
    const failed = await cli(['upgrade', ...sandboxFlags(sandbox(), '0.2.54'), '--timeout', '3s'])
    assert.equal(failed.code, 6, failed.stdout + failed.stderr)
    assert.match(failed.stderr, /^Error: .*re-run/m)
    const paused = await status()
    // Gen S stops while moving definitions (paused); Gen N, with nothing staged, may already have merged and unpaused.
    if (GEN === 'S')
      assert.equal(
        paused.phase,
        'Upgrading',
        `still paused for the re-run; problems: ${JSON.stringify((paused as unknown as { problems: string[] }).problems)}`,
      )
    else assert.ok(['Upgrading', 'Draining', 'Reconciling'].includes(paused.phase), JSON.stringify(paused, null, 1))

    const res = await cli(['upgrade', ...sandboxFlags(sandbox(), '0.2.54'), '--timeout', '5m'])
    assert.equal(res.code, 0, res.stdout + res.stderr)
    // The timed-out run may have moved the installer's own definition already: the resumed run still says where
    // the upgrade started (recorded at the pause). Gen N: with nothing staged, the timed-out run may have merged
    // and unpaused too, and then this run only reconciles.
    assert.match(
      res.stdout,
      GEN === 'S' ? /Installer 0\.2\.53 -> 0\.2\.54\./ : /Installer (0\.2\.53 -> 0\.2\.54|0\.2\.54 reconciled)\./,
    )
    const after = await status()
    assert.equal(after.phase, 'Ready')
    assert.equal(after.installerVersion, '0.2.54')
    const byName = new Map(after.components.map((c) => [c.name, c]))
    assert.equal(byName.get('events-presenter')?.stage, 'ready', 'the added component runs')
    assert.equal(byName.has('otel-collector-daemonset'), false, 'the removed component is no longer listed')
    assert.deepEqual([byName.get('authn')?.version, byName.get('authn')?.stage], ['0.22.1', 'ready'])
    assert.equal(byName.get('oasgen-provider')?.stage, 'disabled', 'the runtime feature edit holds')
    assert.equal((await installer('v0-2-54')).spec.features.oasgen, false, 'spec.features survived the upgrade')
    const values = JSON.parse(
      execFileSync(sandbox().helm, ['get', 'values', 'krateo', '-n', 'krateo-system', '-o', 'json'], {
        env: { ...process.env, ...sandbox().helmEnv() },
      }).toString(),
    ) as { exposure?: { type?: string } }
    assert.equal(
      values.exposure?.type,
      'LoadBalancer',
      "the bootstrap release keeps the install's --exposure (the chart default is NodePort)",
    )
    assert.notEqual(revision(), rev, 'the bootstrap release was upgraded')

    // Gen S: moved in place, the same objects now released at the new chart versions (not pruned and re-created).
    // Gen N: re-created at the new versions by the installer's render, and the Installer is not wedged.
    const authn = await get('v0-22-1', 'authns', 'authn')
    const frontend = await get('v0-25-0', 'frontends', 'frontend')
    if (GEN === 'S') assert.deepEqual([authn.metadata.uid, frontend.metadata.uid], [before.authn, before.frontend])
    else assert.notEqual(authn.metadata.uid, before.authn)
    assert.deepEqual([authn.status?.helmChartVersion, frontend.status?.helmChartVersion], ['0.22.1', '0.25.0'])
    const crds = (await kube().crds.listCustomResourceDefinition()).items.map((c) => c.metadata!.name!)
    assert.equal(
      crds.includes('otelcollectordaemonsets.composition.krateo.io'),
      false,
      'the removed component left no CRD',
    )
    const cds = (await kube().custom.listNamespacedCustomObject({
      group: 'core.krateo.io',
      version: 'v1alpha1',
      namespace: 'krateo-system',
      plural: 'compositiondefinitions',
    })) as { items: { metadata: { name: string } }[] }
    assert.equal(
      cds.items.some((cd) => cd.metadata.name === 'otel-collector-daemonset'),
      false,
    )
  })

  it('on the same version only reconciles, and refuses a downgrade without --allow-downgrade', async () => {
    const rev = revision()
    const same = await cli(['upgrade', ...sandboxFlags(sandbox(), '0.2.54'), '--json'])
    assert.equal(same.code, 0, same.stdout + same.stderr)
    const doc = JSON.parse(same.stdout) as { result: string; changed: unknown[]; status: { phase: string } }
    assert.deepEqual([doc.result, doc.changed, doc.status.phase], ['reconciled', [], 'Ready'])
    assert.match(same.stderr, /installer 0\.2\.54 is already running: only reconciling/)

    const down = await cli(['upgrade', ...sandboxFlags(sandbox(), '0.2.53')])
    assert.equal(down.code, 2, down.stderr)
    assert.match(
      down.stderr,
      /^Error: installer 0\.2\.53 is older than the running 0\.2\.54; a downgrade would move .*authn 0\.22\.1 -> 0\.22\.0.*add otel-collector-daemonset; remove events-presenter; pass --allow-downgrade/m,
    )
    const reinstall = await cli(['install', ...sandboxFlags(sandbox(), '0.2.53')])
    assert.equal(reinstall.code, 2, reinstall.stderr)
    assert.match(
      reinstall.stderr,
      /^Error: installer 0\.2\.54 is already installed in krateo-system; install does not change versions; run: krateo-installer upgrade --version 0\.2\.53/m,
    )
    assert.equal(revision(), rev, 'none of them changed the bootstrap release')
  })

  it('switches a feature off (drained leaves first) and on again, keeping the version (with helm 4)', async () => {
    const helm4 = sandbox().helm4
    assert.ok(helm4, 'the sandbox has helm 4')
    // Someone follows the platform meanwhile with status --watch: one JSON document per change.
    let watched = ''
    const watcher = cli(['status', ...kc(), '--watch', '-o', 'json'], (s) => {
      watched += s
    })
    const docs = () =>
      watched
        .split(/\n(?=\{)/)
        .filter((d) => d.trim())
        .map((d) => JSON.parse(d) as Doc)
    await eventually('status --watch printed the current state', async () => docs().length >= 1, 30_000, 100)
    const off = await cli([
      'upgrade',
      ...chartFlags(),
      '--helm',
      helm4,
      '--feature',
      'observability=false',
      '--timeout',
      '5m',
    ])
    assert.equal(off.code, 0, off.stdout + off.stderr)
    await eventually(
      'status --watch caught up',
      async () => {
        const seen = docs()
        if (seen.at(-1)?.phase === 'Ready' && seen.length >= 3) return true
        throw new Error(`phases printed: ${seen.map((d) => d.phase).join(' ')}; upgrade printed:\n${off.stdout}`)
      },
      30_000,
      200,
    )
    watcher.kill('SIGINT')
    assert.equal((await watcher).code, 0, 'Ready when interrupted')
    const seen = docs()
    assert.equal(seen[0]!.phase, 'Ready')
    assert.ok(
      seen.some((d) => d.phase === 'Draining'),
      `the drain was shown: ${seen.map((d) => d.phase).join(' ')}`,
    )
    assert.equal(seen.at(-1)!.components.find((c) => c.name === 'krateo-clickstack')?.stage, 'disabled')
    const deleting = (name: string) => off.stdout.indexOf(`${name}: deleting`)
    assert.ok(
      deleting('otel-collector-deployment') >= 0 &&
        deleting('krateo-clickstack') > deleting('otel-collector-deployment'),
      off.stdout,
    )
    assert.ok(deleting('krateo-clickstack') > deleting('krateo-sse-proxy'), 'leaves first')
    assert.match(off.stdout, /helm v4\./)
    let doc = await status()
    assert.equal(doc.installerVersion, '0.2.54')
    const observability = ['krateo-clickstack', 'otel-collector-deployment', 'krateo-sse-proxy']
    assert.deepEqual(
      doc.components.filter((c) => observability.includes(c.name)).map((c) => c.stage),
      ['disabled', 'disabled', 'disabled'],
    )
    assert.equal((await installer('v0-2-54')).spec.features.observability, false)

    const on = await cli(['upgrade', ...chartFlags(), '--feature', 'observability=true', '--timeout', '5m'])
    assert.equal(on.code, 0, on.stdout + on.stderr)
    doc = await status()
    assert.equal(doc.phase, 'Ready')
    assert.equal(doc.components.find((c) => c.name === 'krateo-sse-proxy')?.stage, 'ready')
    assert.equal((await installer('v0-2-54')).spec.features.oasgen, false, 'the other runtime edit still holds')
  })

  it("the chart's own upgrade path (its hook's steps, re-applied) prunes and re-creates a component whose version moves", async () => {
    await freshPlatform()
    const uid = (await get('v0-22-0', 'authns', 'authn')).metadata.uid
    // What the post-upgrade hook does: helm upgrade, the installer CD at the new version, then the components patch.
    execFileSync(
      sandbox().helm,
      [
        'upgrade',
        'krateo',
        `oci://${sandbox().registry}/charts/installer`,
        '--version',
        '0.2.54',
        '--plain-http',
        '-n',
        'krateo-system',
        '--reset-then-reuse-values',
        '--no-hooks',
        '--wait',
      ],
      { env: { ...process.env, ...sandbox().helmEnv() } },
    )
    const cm = await kube().core.readNamespacedConfigMap({ name: 'installer-self-cr', namespace: 'krateo-system' })
    const cd = parse(cm.data!['compositiondefinition.yaml']!) as { spec: object }
    await kube().custom.patchNamespacedCustomObject(
      {
        group: 'core.krateo.io',
        version: 'v1alpha1',
        namespace: 'krateo-system',
        plural: 'compositiondefinitions',
        name: 'installer',
        body: { spec: cd.spec },
      },
      MergePatch,
    )
    await eventually(
      'the Installer CRD serves v0-2-54',
      async () =>
        (
          await kube().crds.readCustomResourceDefinition({ name: 'installers.composition.krateo.io' })
        ).spec.versions.some((v) => v.name === 'v0-2-54' && v.served),
      60_000,
    )
    // The hook patches as soon as the kind is served. On Gen S that races core-provider's relabelling, one update
    // per Composition as listed (sandbox/README.md): a patch between its list and its update leaves the Installer
    // at the old version with no cdc, and nothing prunes (a full run). That race is the chart's, not what this
    // test is about: the patch waits for the move.
    await eventually(
      'the Installer moved to v0-2-54',
      async () =>
        ((await installer('v0-2-54')).metadata as { labels?: Record<string, string> }).labels?.[
          'krateo.io/composition-version'
        ] === 'v0-2-54',
      60_000,
      250,
    )
    await whenServed('the Installer patched', () =>
      kube().custom.patchNamespacedCustomObject(
        {
          group: 'composition.krateo.io',
          version: 'v0-2-54',
          namespace: 'krateo-system',
          plural: 'installers',
          name: 'installer',
          body: JSON.parse(cm.data!['components-patch.json']!) as object,
        },
        MergePatch,
      ),
    )
    // Pass B drops authn while its CRD does not serve 0.22.1 yet; the installer's helm upgrade deletes it. One
    // render, at once or at the next resync (60 s); three resyncs allowed: on Gen S every cdc runs helm upgrade on
    // each observe, and under load the installer's render waited past 90 s (full run).
    await eventually(
      'authn pruned',
      async () => {
        const now = await get('v0-22-0', 'authns', 'authn').catch(() => null)
        return !now || now.metadata.uid !== uid || !!(now.metadata as { deletionTimestamp?: string }).deletionTimestamp
      },
      180_000,
      250,
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await pruneFacts()}`)
    })
  })
})
