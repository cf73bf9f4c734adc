import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ExitCode, UserError, printable, redact } from '../../src/platform/errors.js'
import { renderStatus } from '../../src/ui/output.js'
import type { PlatformState } from '../../src/platform/state.js'

describe('user errors', () => {
  it('render as one line with the hint', () => {
    const err = new UserError('helm not found', ExitCode.Helm, 'install helm 3.16+ or pass --helm')
    assert.equal(err.line(), 'helm not found; install helm 3.16+ or pass --helm')
    assert.equal(err.exitCode, 4)
  })
  it('redact known secrets and credential-looking fields', () => {
    assert.equal(redact('login with hunter2 failed', ['hunter2']), 'login with *** failed')
    assert.equal(redact('password=abc123 user=bob'), 'password=*** user=bob')
    assert.equal(redact('{"token": "xyz"}'), '{"token": "***"}')
    assert.equal(redact('Authorization: Bearer abc.def'), 'Authorization: Bearer ***')
  })
  it('escape control characters from the cluster before a terminal sees them', () => {
    assert.equal(printable('ok\tline\nnext'), 'ok\tline\nnext')
    assert.equal(printable('\u001b]0;owned\u0007\u001b[2Jgone\u009b'), '\\x1b]0;owned\\x07\\x1b[2Jgone\\x9b')
    // A condition message and an annotation someone wrote, as status prints them.
    const evil = '\u001b[8mhidden\u001b[0m'
    const state = {
      phase: 'Degraded',
      namespace: 'krateo-system',
      installerVersion: '0.2.53',
      generation: 'S',
      ready: 0,
      total: 1,
      components: [
        {
          name: 'authn',
          feature: 'platform',
          enabled: true,
          version: '0.22.0',
          stage: 'error',
          ready: null,
          synced: null,
          waitingFor: [],
          detail: evil,
          ageSeconds: 5,
        },
      ],
      endpoints: [],
      portalUrl: null,
      portalGap: null,
      problems: [`authn: ${evil}`],
      notes: [],
      pausedBy: `paused by ${evil}`,
      lock: null,
    } as unknown as PlatformState
    const out = renderStatus(state)
    assert.ok(!out.includes('\u001b[8m'), out)
    assert.equal(out.match(/\\x1b\[8mhidden/g)?.length, 3, 'detail, problem and pause each escaped')
  })
})
