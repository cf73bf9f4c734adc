import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ExitCode, UserError, redact } from '../../src/lib/errors.js'

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
})
