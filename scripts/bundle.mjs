// The command as shipped: `dist/station/`, the station and its three worker threads bundled from tsc's output in
// dist/ (run after it by `npm run build`). Why: a `station load` spent a quarter of a second resolving, reading and
// translating some 400 module files (the S3 SDK is most of them; each CommonJS one parsed again by Node's lexer)
// before its first byte, every thread again. Bundled, a load of one small file takes 0.35-0.38 s instead of 0.44, and the
// mixed bench drive 2.8 s instead of 3.0 (docs/benchmarks.md). The unit tests import dist/ module by module.
//
// Flat output: the entry points and the shared chunks sit side by side, so `new URL('./count-worker.js',
// import.meta.url)` finds the worker from whichever chunk holds the code, as it does in dist/load/.
import { build } from 'esbuild';
import { chmodSync, cpSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const out = 'dist/station';
rmSync(out, { recursive: true, force: true });
await build({
  entryPoints: ['dist/cli/main.js', 'dist/load/count-worker.js', 'dist/load/md5-pool-worker.js', 'dist/s3/s3-thread-worker.js'],
  outdir: out,
  entryNames: '[name]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  // Packages' ES module builds where they have one (the S3 SDK's dist-es): esbuild leaves out what is never
  // imported, which it cannot do in CommonJS. The bundle was 2.95 MB of code, now 2.47; `station load`'s imports took
  // 108-126 ms before its first file, now 81-86.
  mainFields: ['module', 'main'],
  target: 'node20',
  sourcemap: 'linked',
  // Native add-ons load their .node file relative to their package; pino and prom-client find parts of themselves
  // by path at run time. They stay in node_modules, and so does re2js, loaded only for a manifest that needs it
  // (src/manifest/fields.ts).
  external: ['better-sqlite3', 'drivelist', 'pino', 'prom-client', 're2js'],
  // CommonJS code in the bundle calls require() for Node's own modules; an ES module has none of its own.
  banner: { js: "import { createRequire as __stationRequire } from 'node:module'; const require = __stationRequire(import.meta.url);" },
  logLevel: 'warning',
});
cpSync('src/screen/assets', `${out}/assets`, { recursive: true });
// The built-in content types (src/load/content-type.ts): mime-types' table, computed once here rather than by
// every load, beside the module in dist/ and beside the bundle's chunks.
const mimeTable = JSON.stringify(createRequire(import.meta.url)('mime-types').types);
for (const dir of ['dist/load', out]) writeFileSync(`${dir}/mime-types.json`, mimeTable);
chmodSync(`${out}/main.js`, 0o755);
