// Lint: typescript-eslint strict + type-checked, plus import bans that keep the pure core pure.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const impure = [
  'node:fs',
  'node:fs/promises',
  'node:child_process',
  'node:net',
  'node:dgram',
  'node:http',
  'node:https',
  'node:os',
  'fs',
  'child_process',
  'net',
  'dgram',
  'http',
  'os',
];
// Type-only imports are allowed: they vanish at compile time and carry no I/O.
const pureRestriction = {
  'no-restricted-imports': 'off',
  '@typescript-eslint/no-restricted-imports': [
    'error',
    {
      paths: impure.map((name) => ({ name, message: 'pure module: no I/O (DESIGN.md §2)' })),
      patterns: [
        {
          group: ['**/k8s/**', '**/exec/**', '**/sources/**', '**/observability/**', '**/app/**'],
          message: 'pure module: no I/O layers (DESIGN.md §2)',
          allowTypeImports: true,
        },
      ],
    },
  ],
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bin/**', 'eslint.config.js', 'scripts/*.mjs', '.tmp/**'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true },
      ],
      '@typescript-eslint/no-unnecessary-condition': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    files: ['src/model/**/*.ts', 'src/net/**/*.ts', 'src/proxy/**/*.ts', 'src/backends/*/render*.ts'],
    ignores: ['**/*.test.ts'],
    rules: pureRestriction,
  },
  // Plain-JS helpers that run inside test namespaces (e2e/lab/*.mjs) are outside tsconfig: lint them without type info.
  { files: ['**/*.mjs'], extends: [tseslint.configs.disableTypeChecked] },
  {
    files: ['**/*.test.ts', 'test/**/*.ts', 'e2e/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
    },
  },
);
