// The layers of src/ and what each may import besides itself: commands on top, the pure platform model at the
// bottom (docs/architecture.md). eslint.config.js turns it into a lint rule; test/unit/layers.test.ts checks the
// whole graph (and that no import goes round in a circle).
export const MAY_IMPORT = {
  commands: ['cli', 'operations', 'ui', 'cluster', 'platform'],
  entry: ['commands', 'hooks'],
  hooks: ['platform'],
  cli: ['cluster', 'platform'],
  operations: ['ui', 'cluster', 'platform'],
  ui: ['platform'],
  cluster: ['platform'],
  platform: [],
}
