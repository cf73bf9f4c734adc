// A tenant beside the platform: a user with `edit` in the platform's namespace (their own kubeconfig, real
// RBAC) forges what such a user can write — an uninstall record in the namespace, the helm annotation that names
// the bootstrap release — to turn the admin's cluster-admin run against objects that are not the platform's.
// The admin's install and uninstall must leave every such object untouched, or refuse and change nothing.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import { eventually, httpCode, kubeFor, TEST_RESYNC_SECONDS, useSandbox } from '../helpers/sandbox.js'
import { cliFor } from '../helpers/cli.js'

const ns = 'krateo-system'
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch)

describe('a tenant with edit rights in the platform namespace', () => {
  const { sandbox, kube } = useSandbox({ engineSettings: { resyncSeconds: TEST_RESYNC_SECONDS } })
  const { cli, kc, install } = cliFor(sandbox)
  const helm = (...args: string[]) =>
    execFileSync(sandbox().helm, args, { env: { ...process.env, ...sandbox().helmEnv() } }).toString()

  it('cannot point uninstall or install at objects that are not the platform’s', async () => {
    await install()
    // The admin's own things beside the platform: a cluster-wide webhook and CRD, and an app installed by helm
    // in the same namespace, with a ClusterRole of its own.
    await sandbox().apiCreate('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', {
      metadata: { name: 'victims.example.com' },
      spec: {
        group: 'example.com',
        scope: 'Namespaced',
        names: { plural: 'victims', singular: 'victim', kind: 'Victim' },
        versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object' } } }],
      },
    })
    await sandbox().apiCreate('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', {
      metadata: { name: 'victim-webhook' },
      webhooks: [
        {
          name: 'core.provider.krateo.io',
          admissionReviewVersions: ['v1'],
          sideEffects: 'None',
          failurePolicy: 'Ignore',
          clientConfig: { url: 'https://127.0.0.1:1/mutate' },
          rules: [{ apiGroups: ['example.com'], apiVersions: ['v1'], operations: ['CREATE'], resources: ['victims'] }],
        },
      ],
    })
    const chart = mkdtempSync(join(tmpdir(), 'victim-chart-'))
    mkdirSync(join(chart, 'templates'))
    writeFileSync(join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: victim\nversion: 1.0.0\n')
    writeFileSync(
      join(chart, 'templates', 'role.yaml'),
      'apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: victim-app\nrules: []\n',
    )
    helm('install', 'victim', chart, '-n', ns)

    // The tenant: edit in the platform's namespace, nothing cluster-wide.
    await sandbox().apiCreate(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
      metadata: { name: 'mallory-edit' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' },
      subjects: [{ kind: 'User', name: 'mallory', apiGroup: 'rbac.authorization.k8s.io' }],
    })
    const mallory = kubeFor(sandbox().mintUserKubeconfig('mallory'))
    const forged = {
      release: 'victim',
      definitions: [],
      crds: [],
      bundles: [],
      webhooks: ['victim-webhook'],
      restCrds: ['victims.example.com'],
      statefulSets: [],
      secrets: [],
      startedAt: '2026-01-01T00:00:00Z',
    }
    const record = (namespace: string, name: string) => ({
      namespace,
      body: {
        metadata: { name, labels: { 'app.kubernetes.io/managed-by': 'krateo-installer' } },
        data: { 'record.json': JSON.stringify(forged) },
      },
    })
    // Where the record lives, only admins write; in the namespace, the tenant can, and it proves nothing.
    await assert.rejects(
      mallory.core.createNamespacedConfigMap(record('kube-system', `krateo-installer-teardown.${ns}`)),
      (err) => httpCode(err) === 403,
    )
    await eventually('the tenant can write in the namespace', () =>
      mallory.core.createNamespacedConfigMap(record(ns, 'krateo-installer-teardown')),
    )
    // The annotation that names the bootstrap release, pointed at the admin's app.
    await mallory.core.patchNamespacedConfigMap(
      {
        name: 'installer-self-cr',
        namespace: ns,
        body: { metadata: { annotations: { 'meta.helm.sh/release-name': 'victim' } } },
      },
      mergePatch,
    )
    const victimRevision = () =>
      (JSON.parse(helm('list', '-n', ns, '--filter', '^victim$', '-o', 'json')) as { revision: string }[])[0]?.revision

    // install would adopt "victim" and upgrade it with the installer chart: refused, nothing changed.
    const adopt = await install().catch((err: Error) => err)
    assert.ok(adopt instanceof Error, 'install refuses')
    assert.match(adopt.message, /install exited 7/)
    assert.match(adopt.message, /helm release victim in krateo-system is not proved the platform's bootstrap release/)
    assert.equal(victimRevision(), '1')

    const dry = await cli(['uninstall', ...kc(), '--dry-run'])
    assert.equal(dry.code, 0, dry.stderr)
    // Listed as not the platform's where they look related; never in what the stages delete.
    assert.match(dry.stdout, /helm uninstall krateo \(hooks skipped\)/)
    assert.doesNotMatch(dry.stdout, /Stage 3:[^\n]*(victim|victims\.example\.com)/)
    assert.match(
      dry.stdout,
      /helm release victim \(named by the helm annotation on ConfigMap installer-self-cr\): not proved/,
    )

    const res = await cli(['uninstall', ...kc(), '--yes', '--timeout', '5m'])
    assert.equal(res.code, 0, res.stdout + res.stderr)
    assert.match(res.stdout, /Uninstalling Krateo \(release krateo\)/)
    assert.match(res.stdout, /Not the platform's, kept: helm release victim/)
    // Everything of the admin's is still there; the platform is gone.
    assert.equal(victimRevision(), '1')
    await kube().rbac.readClusterRole({ name: 'victim-app' })
    await kube().crds.readCustomResourceDefinition({ name: 'victims.example.com' })
    assert.equal(
      (await sandbox().apiGet('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/victim-webhook'))
        .status,
      200,
    )
    const status = await cli(['status', ...kc(), '-o', 'json'])
    assert.equal((JSON.parse(status.stdout) as { phase: string }).phase, 'NotInstalled', status.stdout)
    // The real record is in kube-system, where the tenant could not write.
    const real = await kube().core.readNamespacedConfigMap({
      name: `krateo-installer-teardown.${ns}`,
      namespace: 'kube-system',
    })
    assert.match(real.data?.['record.json'] ?? '', /"release":"krateo"/)
  })
})
