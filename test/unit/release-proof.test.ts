import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { anchorsRelease, foreignInManifest, recordedAs } from '../../src/cluster/release-proof.js'

const helmOf = (release: string, namespace: string) => ({
  'meta.helm.sh/release-name': release,
  'meta.helm.sh/release-namespace': namespace,
})

describe('proof of the bootstrap release', () => {
  it("is anchored by a ClusterRole helm installed with it that grants rights on Krateo's core API", () => {
    const role = (annotations: Record<string, string>, groups: string[]) => ({
      metadata: { name: 'r', annotations },
      rules: [{ apiGroups: groups }],
    })
    assert.equal(
      anchorsRelease(role(helmOf('krateo', 'krateo-system'), ['core.krateo.io']), 'krateo', 'krateo-system'),
      true,
    )
    assert.equal(
      anchorsRelease(role(helmOf('victim', 'krateo-system'), ['apps']), 'victim', 'krateo-system'),
      false,
      "an unrelated app's role",
    )
    assert.equal(
      anchorsRelease(role(helmOf('krateo', 'other'), ['core.krateo.io']), 'krateo', 'krateo-system'),
      false,
      'the same release name in another namespace',
    )
  })

  it("names what a release record lists outside the namespace that helm did not install with it (someone else's), and ignores what the namespace's editors could change anyway", () => {
    const entries = [
      {
        ref: 'ConfigMap/installer-self-cr',
        live: { metadata: { annotations: helmOf('victim', 'krateo-system') } },
        inNamespace: true,
      },
      {
        ref: 'ClusterRole/victim',
        live: { metadata: { annotations: helmOf('victim', 'default') } },
        inNamespace: false,
      },
      { ref: 'ClusterRoleBinding/gone', live: null, inNamespace: false },
    ]
    assert.deepEqual(foreignInManifest(entries, 'krateo', 'krateo-system'), ['ClusterRole/victim'])
    assert.equal(recordedAs({ metadata: {} }, 'krateo', 'krateo-system'), false)
  })
})
