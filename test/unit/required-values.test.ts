import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { checkRequiredValues } from '../../src/platform/required-values.js'
import type { Component } from '../../src/platform/components.js'

const components: Component[] = [
  { name: 'authn', kind: 'Authn', version: '1.0.0', deps: [], feature: 'portal' },
  { name: 'kagent', kind: 'Kagent', version: '1.0.0', deps: [], feature: 'coreAgents' },
]

describe('values the chart needs once a feature is on', () => {
  it('refuses vertexAI on without a projectID while agents are on, naming the agents and the flags that fix it', () => {
    assert.throws(
      () =>
        checkRequiredValues(
          { vertexAI: { enabled: true, projectID: '' }, features: { portal: true, coreAgents: true } },
          components,
        ),
      (e: Error & { exitCode?: number; hint?: string }) =>
        /vertexAI\.projectID is empty, so kagent would install and never work/.test(e.message),
    )
  })
  it('accepts a projectID, vertexAI off, or no agents', () => {
    checkRequiredValues({ vertexAI: { enabled: true, projectID: 'acme' }, features: { coreAgents: true } }, components)
    checkRequiredValues({ vertexAI: { enabled: false }, features: { coreAgents: true } }, components)
    checkRequiredValues(
      { vertexAI: { enabled: true, projectID: '' }, features: { portal: true, coreAgents: false } },
      components,
    )
  })
})
