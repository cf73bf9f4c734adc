import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { checkNamespace, featureSets, parseDuration } from '../../src/platform/flags.js'
import { Helm, helmSupported, parseHelmVersion } from '../../src/cluster/helm.js'
import { chartArgs, checkNamespaceSets } from '../../src/cluster/chart.js'

describe('flag values', () => {
  it('parses durations and refuses the rest', () => {
    assert.equal(parseDuration('90s'), 90_000)
    assert.equal(parseDuration('20m'), 1_200_000)
    assert.equal(parseDuration('45'), 45_000)
    assert.equal(parseDuration('1h30m'), 5_400_000, 'Go syntax, as helm and kubectl')
    assert.equal(parseDuration('5m0s'), 300_000, 'as helm prints its own defaults')
    assert.equal(parseDuration('1.5h'), 5_400_000)
    assert.throws(() => parseDuration('soon'), /--timeout "soon" is not a duration/)
    assert.throws(() => parseDuration('5 minutes'), /is not a duration/)
    assert.throws(() => parseDuration('0s'), /--timeout "0s" must be longer than 0s/)
    assert.throws(() => parseDuration('-5m'), /must be longer than 0s/)
  })
  it('turns --feature into helm --set values', () => {
    assert.deepEqual(featureSets(['agents=true', 'observability=false']), [
      'features.agents=true',
      'features.observability=false',
    ])
    assert.throws(() => featureSets(['agents']), /is not name=true\|false/)
  })
  it('accepts helm 3.16+ and 4.x only', () => {
    assert.equal(helmSupported(parseHelmVersion('v3.19.5+g1234')!), true)
    assert.equal(helmSupported(parseHelmVersion('v4.3.1')!), true)
    assert.equal(helmSupported(parseHelmVersion('v3.15.4')!), false)
    assert.equal(parseHelmVersion('nonsense'), null)
  })
  it('passes values derived from flags as JSON, so commas, backslashes and digits reach the chart as typed', () => {
    const helm = new Helm({})
    const args = chartArgs(
      { chart: 'oci://r/installer', version: '1.0.0' },
      {
        files: [],
        sets: ['a=b'],
        derived: { 'registryAuth.username': 'CORP\\bot,ociRepo=x', 'namespaces.krateo': '2024', 'exposure.port': 8080 },
      },
      helm,
    )
    assert.deepEqual(args.slice(3, 9), [
      '--set-json',
      'registryAuth.username="CORP\\\\bot,ociRepo=x"',
      '--set-json',
      'namespaces.krateo="2024"',
      '--set-json',
      'exposure.port=8080',
    ])
    assert.deepEqual(args.slice(9, 11), ['--set', 'a=b'], "the user's --set comes after, with helm semantics")
  })
  it('refuses a namespace that is not a DNS label, and a --set that moves the chart away from -n', () => {
    assert.equal(checkNamespace('krateo-system'), 'krateo-system')
    assert.throws(
      () => checkNamespace('Bad_Namespace'),
      /-n\/--namespace "Bad_Namespace" is not a valid namespace name/,
    )
    assert.throws(
      () => checkNamespaceSets(['x=1,namespaces.krateo=other'], 'krateo-system'),
      /--set namespaces.krateo=other differs from -n krateo-system/,
    )
    checkNamespaceSets(['namespaces.krateo=krateo-system'], 'krateo-system')
  })
  it('gives helm registry login its own TLS flag names', () => {
    const helm = new Helm({ insecureSkipTlsVerify: true, plainHttp: true, caFile: 'ca.pem' })
    helm.version = parseHelmVersion('v3.16.0')
    assert.deepEqual(
      helm.loginArgs(),
      ['--insecure', '--ca-file', 'ca.pem'],
      'login has no --insecure-skip-tls-verify, and no --plain-http before 3.18',
    )
    helm.version = parseHelmVersion('v3.19.5')
    assert.deepEqual(helm.loginArgs(), ['--plain-http', '--insecure', '--ca-file', 'ca.pem'])
  })
})
