import js from '@eslint/js'
import tseslint from 'typescript-eslint'
import { MAY_IMPORT } from './scripts/layers.mjs'

// Imports point one way: a file of one layer of src/ may not import a layer MAY_IMPORT does not list for it.
const layerRules = Object.entries(MAY_IMPORT).map(([layer, allowed]) => ({
  files: [`src/${layer}/**/*.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: Object.keys(MAY_IMPORT)
          .filter((other) => other !== layer && !allowed.includes(other))
          .map((other) => ({
            group: [`**/${other}/*`],
            message: `src/${layer} may import only ${[...allowed].join(', ') || 'itself'} (scripts/layers.mjs)`,
          })),
      },
    ],
  },
}))

export default tseslint.config(
  { ignores: ['dist-exe/', 'dist/**', 'node_modules/**', 'oclif.manifest.json'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        URL: 'readonly',
        Buffer: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  {
    // A file a newcomer can read in one sitting (issue: one run, one context).
    files: ['src/**/*.ts'],
    rules: {
      'max-lines': ['error', { max: 300 }],
      // A function that fits on a screen: its code lines, not its comments.
      'max-lines-per-function': ['error', { max: 60, skipBlankLines: true, skipComments: true }],
    },
  },
  ...layerRules,
)
