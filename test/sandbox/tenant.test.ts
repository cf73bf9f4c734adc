// A tenant beside the platform: a user with `edit` in the platform's namespace (their own kubeconfig, real
// RBAC) forges what such a user can write — an uninstall record in the namespace, the helm annotation that names
// the bootstrap release — to turn the admin's cluster-admin run against objects that are not the platform's.
// The admin's install and uninstall must leave every such object untouched, or refuse and change nothing.
import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { AdmissionregistrationV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import { eventually, httpCode, kubeFor, TEST_RESYNC_SECONDS, useSandbox, helmFor } from '../helpers/sandbox.js'
import { cliFor } from '../helpers/cli.js'
import { scratchDir } from '../helpers/scratch.js'

const ns = 'krateo-system'
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch)

describe('a tenant with edit rights in the platform namespace', () => {
  const { sandbox, kube } = useSandbox({ engineSettings: { resyncSeconds: TEST_RESYNC_SECONDS } })
  const { cli, kc, install, freshPlatform } = cliFor(sandbox)
  const helm = helmFor(sandbox)

  /** Status until it says Ready (the Installer may be settling for a moment), naming its problems if it never does. */
  const statusReady = async () => {
    type StatusDoc = { phase: string; problems?: string[]; components: { name: string; stage: string }[] }
    let seen: StatusDoc | undefined
    await eventually(
      'status Ready',
      async () => {
        seen = JSON.parse((await cli(['status', ...kc(), '-o', 'json'])).stdout) as StatusDoc
        if (seen.phase !== 'Ready') throw new Error(`${seen.phase}: ${JSON.stringify(seen.problems ?? [])}`)
        return true
      },
      60_000,
      1000,
    )
    return seen!
  }

  it('cannot point uninstall or install at objects that are not the platform’s', async () => {
    await freshPlatform()
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
    const chart = scratchDir('victim-chart-')
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

  it('cannot steer upgrade at a chart of theirs; their definition named like a disabled component is neither the platform nor touched', async () => {
    await freshPlatform()
    const CD = { group: 'core.krateo.io', version: 'v1alpha1', namespace: ns, plural: 'compositiondefinitions' }
    // Teams keep their blueprints here: edit, and the Krateo kinds in this namespace only.
    await sandbox().apiCreate(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, {
      metadata: { name: 'blueprints' },
      rules: [{ apiGroups: ['core.krateo.io', 'composition.krateo.io'], resources: ['*'], verbs: ['*'] }],
    })
    // (The first test bound edit too; this one stands alone.)
    await sandbox().apiCreate(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
      metadata: { name: 'mallory-edits' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' },
      subjects: [{ kind: 'User', name: 'mallory', apiGroup: 'rbac.authorization.k8s.io' }],
    })
    await sandbox().apiCreate(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
      metadata: { name: 'mallory-blueprints' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'blueprints' },
      subjects: [{ kind: 'User', name: 'mallory', apiGroup: 'rbac.authorization.k8s.io' }],
    })
    const mallory = kubeFor(sandbox().mintUserKubeconfig('mallory'))
    const definition = async (name: string) =>
      (await kube().custom.getNamespacedCustomObject({ ...CD, name })) as {
        spec: { chart: { url: string; version: string } }
        status?: { apiVersion?: string; kind?: string; resource?: string }
      }
    const releaseRevision = () =>
      (JSON.parse(helm('list', '-n', ns, '--filter', '^krateo$', '-o', 'json')) as { revision: number }[])[0]?.revision

    // N7: the installer definition's chart location, which the tenant can edit, is not a chart the admin's
    // upgrade installs with cluster-admin rights.
    const official = (await definition('installer')).spec.chart.url
    const evil = 'oci://127.0.0.1:1/mallory/installer'
    await eventually('the tenant points the installer definition elsewhere', () =>
      mallory.custom.patchNamespacedCustomObject(
        { ...CD, name: 'installer', body: { spec: { chart: { url: evil } } } },
        mergePatch,
      ),
    )
    const before = releaseRevision()
    const up = await cli(['upgrade', ...kc(), '--yes'])
    assert.equal(up.code, 2, up.stdout + up.stderr)
    assert.match(
      up.stderr,
      /^Error: the running installer came from oci:\/\/127\.0\.0\.1:1\/mallory\/installer, which is neither the official chart location nor the one release krateo was installed with .*nothing was changed; name the chart to upgrade from with --chart/m,
    )
    assert.equal(releaseRevision(), before, 'the bootstrap release was not upgraded')
    await kube().custom.patchNamespacedCustomObject(
      { ...CD, name: 'installer', body: { spec: { chart: { url: official } } } },
      mergePatch,
    )

    // N8: a feature switched off, then the tenant's own blueprint under that component's name, with a Composition.
    const clickstack = await definition('krateo-clickstack')
    const off = await cli(['upgrade', ...kc(), '--yes', '--feature', 'observability=false', '--timeout', '5m'])
    assert.equal(off.code, 0, off.stdout + off.stderr)
    // The platform's definition goes after the upgrade returns (core-provider removes it); then theirs is made.
    await eventually(
      'their definition is created',
      () =>
        mallory.custom.createNamespacedCustomObject({
          ...CD,
          body: {
            apiVersion: 'core.krateo.io/v1alpha1',
            kind: 'CompositionDefinition',
            metadata: { name: 'krateo-clickstack' },
            spec: { chart: clickstack.spec.chart },
          },
        }),
      90_000,
      500,
    )
    const theirs = await eventually('their definition is served', async () => {
      const d = await definition('krateo-clickstack')
      return d.status?.resource && d.status.apiVersion ? d : undefined
    })
    const [group, version] = theirs.status!.apiVersion!.split('/') as [string, string]
    const kind = { group, version, namespace: ns, plural: theirs.status!.resource! }
    await eventually('their Composition is created', () =>
      mallory.custom.createNamespacedCustomObject({
        ...kind,
        body: {
          apiVersion: theirs.status!.apiVersion,
          kind: theirs.status!.kind,
          metadata: { name: 'krateo-clickstack' },
          spec: {},
        },
      }),
    )
    // The Installer may still be settling the feature switch (a full run once caught it Degraded for a moment);
    // what a team's definition must never do is make status report its component as the platform's.
    const seen = await statusReady()
    assert.equal(seen.components.find((c) => c.name === 'krateo-clickstack')?.stage, 'disabled', 'not the platform')

    // N14: another platform's core-provider webhook (cluster-wide: the admin's), and a stopped Deployment the tenant
    // makes that claims to be our release's core-provider under that webhook's name.
    const admission = kube().kc.makeApiClient(AdmissionregistrationV1Api)
    await admission.createMutatingWebhookConfiguration({
      body: {
        metadata: { name: 'team-b-core-provider' },
        webhooks: [
          {
            name: 'core.provider.krateo.io',
            clientConfig: { service: { namespace: 'team-b', name: 'core-provider-webhook' } },
            rules: [{ operations: ['CREATE'], apiGroups: ['example.invalid'], apiVersions: ['*'], resources: ['*'] }],
            failurePolicy: 'Ignore',
            sideEffects: 'None',
            admissionReviewVersions: ['v1'],
          },
        ],
      },
    })
    const labels = { 'app.kubernetes.io/name': 'core-provider', 'app.kubernetes.io/instance': 'krateo' }
    await mallory.apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: 'team-b-core-provider', labels },
        spec: {
          replicas: 0,
          selector: { matchLabels: labels },
          template: { metadata: { labels }, spec: { containers: [{ name: 'core-provider', image: 'team-b/fake' }] } },
        },
      },
    })

    // The installer chart's own teardown hook deletes every component's Composition by kind and name, theirs
    // too: uninstall refuses, naming it, and changes nothing.
    const refused = await cli(['uninstall', ...kc(), '--yes', '--timeout', '5m'])
    assert.equal(refused.code, 7, refused.stdout + refused.stderr)
    assert.match(
      refused.stderr,
      /^Error: uninstalling would delete 1 object that is not the platform's: \S+ krateo-system\/krateo-clickstack \(named like the platform's component krateo-clickstack, which it does not run now: the installer chart's own teardown hook deletes it by kind and name\); nothing was changed/m,
    )
    await statusReady()
    // They move it under a name of theirs; then the platform goes and theirs stays.
    await mallory.custom.deleteNamespacedCustomObject({ ...kind, name: 'krateo-clickstack' })
    await mallory.custom.createNamespacedCustomObject({
      ...kind,
      body: {
        apiVersion: theirs.status!.apiVersion,
        kind: theirs.status!.kind,
        metadata: { name: 'shop-stack' },
        spec: {},
      },
    })
    await eventually(
      'their old Composition is gone',
      async () =>
        await kube()
          .custom.getNamespacedCustomObject({ ...kind, name: 'krateo-clickstack' })
          .then(
            () => false,
            () => true,
          ),
    )
    const res = await cli(['uninstall', ...kc(), '--yes', '--timeout', '5m'])
    assert.equal(res.code, 0, res.stdout + res.stderr)
    assert.match(res.stdout, /CompositionDefinitions here are not the platform's and are kept/)
    await admission.readMutatingWebhookConfiguration({ name: 'team-b-core-provider' })
    // N2: --purge keeps a namespace that holds the tenant's objects, and says why.
    const purge = await cli(['uninstall', ...kc(), '--purge', '--yes'])
    assert.equal(purge.code, 0, purge.stdout + purge.stderr)
    assert.match(
      purge.stdout,
      /Namespace krateo-system: holds \d+ objects that are not the platform's \(.*\), so it is kept/,
    )
    await kube().apps.readNamespacedDeployment({ name: 'team-b-core-provider', namespace: ns })
    const cd = await definition('krateo-clickstack')
    assert.deepEqual(cd.spec.chart, clickstack.spec.chart, 'their definition is not re-pointed')
    assert.equal((cd as { metadata?: { deletionTimestamp?: string } }).metadata?.deletionTimestamp, undefined)
    const composition = (await kube().custom.getNamespacedCustomObject({ ...kind, name: 'shop-stack' })) as {
      metadata: { deletionTimestamp?: string }
    }
    assert.equal(composition.metadata.deletionTimestamp, undefined, 'their Composition is not deleted')
    const after = JSON.parse((await cli(['status', ...kc(), '-o', 'json'])).stdout) as { phase: string }
    assert.equal(after.phase, 'NotInstalled', 'their definition does not make a platform')
  })
})
