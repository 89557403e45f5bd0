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
// Which folder of src/ may import which (docs/architecture.md has the same table). `value`: any import;
// `type`: type-only imports (they vanish at compile time). Everything else is an error.
const LAYERS = {
  errors: { value: [], type: [] },
  version: { value: [], type: [] },
  net: { value: ['errors'], type: [] },
  model: { value: ['net', 'errors'], type: [] },
  config: { value: ['model', 'net', 'errors'], type: [] },
  exec: { value: ['model', 'errors'], type: [] },
  proxy: { value: ['model', 'net', 'errors'], type: ['config', 'sources'] },
  observability: { value: ['model', 'errors'], type: ['app', 'config'] },
  k8s: { value: ['model', 'net', 'errors'], type: ['observability', 'config'] },
  sources: { value: ['k8s', 'model', 'net', 'errors'], type: ['observability', 'config', 'proxy'] },
  backends: { value: ['proxy', 'model', 'net', 'config', 'exec', 'errors'], type: ['observability'] },
  // kube-proxy explain: tracers over the renderers' text; shares their names and matches (pure).
  explain: { value: ['backends', 'proxy', 'model', 'net', 'errors'], type: [] },
  app: {
    value: [
      'backends',
      'explain',
      'config',
      'exec',
      'k8s',
      'model',
      'net',
      'observability',
      'proxy',
      'sources',
      'errors',
    ],
    type: [],
  },
  demo: { value: ['app', 'config', 'observability', 'backends', 'errors'], type: [] },
  main: { value: ['app', 'config', 'observability', 'backends', 'explain', 'errors', 'version'], type: [] },
};
const FOLDERS = Object.keys(LAYERS).filter((l) => !['errors', 'version', 'main'].includes(l));
// Pure modules: no node I/O modules and no I/O layer, whatever their folder allows.
// Every module that plans, parses or renders without touching the system; a new pure module belongs here.
const PURE_FILES = [
  'src/errors.ts',
  'src/version.ts',
  'src/model/**/*.ts',
  'src/net/**/*.ts',
  'src/proxy/**/*.ts',
  // config/ but load.ts, which reads the file the flags name.
  'src/config/decode.ts',
  'src/config/defaults.ts',
  'src/config/duration.ts',
  'src/config/encode.ts',
  'src/config/errors.ts',
  'src/config/flags.ts',
  'src/config/schema.ts',
  'src/config/types.ts',
  'src/config/validate.ts',
  'src/backends/*/render*.ts',
  'src/backends/common/*.ts',
  'src/backends/conntrack/plan.ts',
  'src/backends/iptables/chain-diff.ts',
  'src/backends/iptables/hash.ts',
  'src/backends/iptables/planner.ts',
  'src/backends/iptables/save-normalize.ts',
  'src/backends/ipvs/diff.ts',
  'src/backends/ipvs/incremental.ts',
  'src/backends/ipvs/names.ts',
  'src/backends/nftables/drift-gate.ts',
  'src/backends/nftables/names.ts',
  'src/backends/nftables/programmed.ts',
  'src/backends/nftables/slots.ts',
  'src/backends/userspace/balancer.ts',
  'src/backends/userspace/port-allocator.ts',
  'src/backends/userspace/portal-render.ts',
  'src/backends/userspace/relay-stats.ts',
  'src/explain/**/*.ts',
];
const IO_LAYERS = ['k8s', 'exec', 'sources', 'observability', 'app'];

/** The import restriction for files of `layer` (pure: also no I/O). */
function restrict(layer, pure) {
  const allowed = LAYERS[layer];
  const others = FOLDERS.filter((l) => l !== layer);
  const patterns = [];
  const banned = others.filter((l) => !allowed.value.includes(l) && !(pure && IO_LAYERS.includes(l)));
  const typeOnly = banned.filter((l) => allowed.type.includes(l) || (pure && IO_LAYERS.includes(l)));
  const never = banned.filter((l) => !typeOnly.includes(l));
  if (pure)
    patterns.push({
      group: IO_LAYERS.filter((l) => l !== layer).map((l) => `**/${l}/**`),
      message: 'pure module: no I/O layers (docs/architecture.md)',
      allowTypeImports: true,
    });
  if (typeOnly.filter((l) => !(pure && IO_LAYERS.includes(l))).length > 0)
    patterns.push({
      group: typeOnly.filter((l) => !(pure && IO_LAYERS.includes(l))).map((l) => `**/${l}/**`),
      message: `${layer}/ may import these layers' types only (docs/architecture.md, "Layers")`,
      allowTypeImports: true,
    });
  if (never.length > 0)
    patterns.push({
      group: never.map((l) => `**/${l}/**`),
      message: `${layer}/ may not import this layer (docs/architecture.md, "Layers")`,
    });
  return {
    'no-restricted-imports': 'off',
    '@typescript-eslint/no-restricted-imports': [
      'error',
      {
        paths: pure
          ? impure.map((name) => ({ name, message: 'pure module: no I/O (docs/architecture.md)' }))
          : [],
        patterns,
      },
    ],
  };
}

function layerOf(glob) {
  const m = /^src\/([a-z]+)/.exec(glob);
  return m && LAYERS[m[1]] ? m[1] : m && m[1] === 'errors' ? 'errors' : undefined;
}

const layerBlocks = [
  ...FOLDERS.map((layer) => ({
    files: [`src/${layer}/**/*.ts`],
    ignores: ['**/*.test.ts'],
    rules: restrict(layer, false),
  })),
  // Later blocks win for the same rule: the pure files' blocks come last and carry their layer's bans too.
  ...PURE_FILES.map((glob) => ({
    files: [glob],
    ignores: ['**/*.test.ts'],
    rules: restrict(layerOf(glob) ?? 'errors', true),
  })),
];

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
  ...layerBlocks,
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
