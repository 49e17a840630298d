// ESLint (flat config): TypeScript with type information, the layer rule of docs/architecture.md
// and its front-door rule. `npm run lint` runs it and Prettier's check; test/lint.test.ts shows the
// layer rule refusing a wrong import.
import js from '@eslint/js';
import boundaries from 'eslint-plugin-boundaries';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/** The layers, top to bottom, and what each may import besides itself (docs/architecture.md). */
const LAYERS = [
  { type: 'cli', pattern: 'src/cli/**', allow: ['roles', 'core', 'forge', 'ledger', 'platform', 'policy', 'config'] },
  { type: 'roles', pattern: ['src/roles.ts', 'src/role-names.ts'], allow: ['core', 'forge', 'ledger', 'platform', 'policy', 'config'] },
  { type: 'core', pattern: 'src/core/**', allow: ['ledger', 'platform', 'policy', 'config'] },
  { type: 'forge', pattern: 'src/forge/**', allow: ['ledger', 'platform', 'policy', 'config'] },
  { type: 'ledger', pattern: 'src/ledger/**', allow: ['platform', 'policy', 'config'] },
  { type: 'platform', pattern: 'src/platform/**', allow: ['policy', 'config'] },
  { type: 'policy', pattern: 'src/policy/**', allow: [] },
  { type: 'config', pattern: ['src/config/**', 'src/version.ts'], allow: [] },
];

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'dist.*/**', 'data/**', 'storage/**', 'coverage/**', 'web/vendor/**', 'test/fixtures/**'] },
  {
    files: ['**/*.{ts,mjs,js}'],
    extends: [js.configs.recommended],
    languageOptions: { ecmaVersion: 2024, sourceType: 'module', globals: globals.node },
  },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // `catch (err)` and JSON are `unknown`/`any` at the edges; TypeBox and our parsers narrow them, and the
      // unsafe-* family flags every such edge rather than a mistake.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      // node:test's describe/it/test return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] },
          ],
        },
      ],
      // Fastify plugins and Promise-returning interfaces (health checks, stores, buses) are async without awaiting.
      '@typescript-eslint/require-await': 'off',
      // Rethrowing what a catch caught (unknown) is fine; throwing a literal is not.
      '@typescript-eslint/only-throw-error': ['error', { allowThrowingUnknown: true, allowThrowingAny: true }],
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true, allowThrowingAny: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // The layer rule: imports point down only.
    files: ['src/**/*.ts'],
    plugins: { boundaries },
    settings: {
      'import/resolver': { typescript: { project: './tsconfig.json' } },
      'boundaries/files': LAYERS.map(({ type, pattern }) => ({ category: type, pattern })),
      'boundaries/include': ['src/**/*.ts'],
    },
    rules: {
      'boundaries/dependencies': [
        'error',
        {
          default: 'disallow',
          message:
            '{{from.file.categories}} may not import {{to.file.path}} ({{to.file.categories}}): imports point down only (cli → roles → forge, core → ledger → platform → policy, config)',
          policies: LAYERS.map(({ type, allow }) => ({
            from: { file: { categories: type } },
            allow: { to: { file: { categories: { anyOf: [type, ...allow] } } } },
          })),
        },
      ],
    },
  },
  {
    // The front-door rule: no barrels. A module is imported from the file that defines what is used; an
    // adapter may still re-export its package's type (Logger from pino).
    files: ['src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ regex: '(^|/)index(\\.js)?$', message: 'no barrels: import from the file that defines it' }] }],
      'no-restricted-syntax': [
        'error',
        { selector: 'ExportAllDeclaration[source.value=/^\\./]', message: 'no barrels: import from the file that defines it instead of re-exporting' },
        { selector: 'ExportNamedDeclaration[source.value=/^\\./]', message: 'no barrels: import from the file that defines it instead of re-exporting' },
      ],
    },
  },
  {
    files: ['**/*.{mjs,js}'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    files: ['web/**/*.js'],
    languageOptions: { globals: globals.browser },
  },
);
