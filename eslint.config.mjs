// Lint rules that keep the architecture honest (DESIGN.md "Shape"):
// core/ knows nothing of Temporal; workflows/ import only @temporalio/workflow and plain types.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['@temporalio/*'], message: 'core/ must not depend on Temporal' }] }],
    },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['@temporalio/*', '!@temporalio/workflow', '!@temporalio/common'], message: 'workflows/ may import only @temporalio/workflow', allowTypeImports: true },
          { group: ['node:*', 'fs', 'path', 'crypto', '@aws-sdk/*'], message: 'workflow code must stay deterministic: no I/O modules' },
          { group: ['../activities/*', '../core/*'], message: 'import activities only as types; core/ is not workflow code', allowTypeImports: true },
        ],
      }],
    },
  },
);
