// Builds the pages into dist/: one HTML file per page, the bundled scripts (esbuild, ES
// modules with a shared chunk) and the stylesheet, plus a gzip copy of each file for clients
// that accept it. docketd embeds dist/ at compile time (appliance/docketd/build.rs), so dist/
// is committed and `cargo build` needs no Node.js; scripts/build-web.sh rebuilds it and
// scripts/test.sh fails when it is stale.
//
//   node build.mjs [--out DIR]

import * as esbuild from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

const here = path.dirname(new URL(import.meta.url).pathname);
const outArg = process.argv.indexOf('--out');
const out = outArg > 0 ? path.resolve(process.argv[outArg + 1]) : path.join(here, 'dist');

const pages = {
  tablet: 'Docket · Tablet',
  kds: 'Docket · KDS',
  expo: 'Docket · Expo',
  admin: 'Docket · Admin',
};

fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(path.join(out, 'assets'), { recursive: true });

await esbuild.build({
  entryPoints: Object.keys(pages).map((p) => path.join(here, 'src', `${p}.js`)),
  bundle: true,
  splitting: true,
  format: 'esm',
  minify: true,
  target: 'es2020',
  outdir: path.join(out, 'assets'),
  entryNames: '[name]',
  chunkNames: 'chunk-[hash]',
  legalComments: 'linked',
  logLevel: 'warning',
  platform: 'browser',
});
// The stylesheet minified like the scripts: fewer bytes for a tablet on a busy Wi-Fi.
await esbuild.build({
  entryPoints: [path.join(here, 'src', 'docket.css')],
  minify: true,
  outfile: path.join(out, 'assets', 'docket.css'),
  logLevel: 'warning',
});
fs.copyFileSync(path.join(here, 'src', 'favicon.svg'), path.join(out, 'assets', 'favicon.svg'));

// Each page's HTML, compact like the scripts: the shell is the same for every page, so only the
// title, the script and the body differ.
const html = (title, script, body = '') =>
  [
    '<!doctype html><html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="color-scheme" content="light dark">',
    `<title>${title}</title>`,
    '<link rel="icon" href="/assets/favicon.svg" type="image/svg+xml">',
    '<link rel="stylesheet" href="/assets/docket.css">',
    script ? `<script type="module" src="/assets/${script}.js"></script>` : '',
    `</head><body>${body}</body></html>\n`,
  ].join('');
for (const [page, title] of Object.entries(pages)) {
  fs.writeFileSync(path.join(out, `${page}.html`), html(title, page));
}
fs.writeFileSync(
  path.join(out, 'index.html'),
  html(
    'Docket',
    null,
    `<header><h1>Docket</h1></header><main class="index">
<a href="/tablet">Waiter tablet</a>
<a href="/kds?station=grill">Station screen (KDS): /kds?station=NAME</a>
<a href="/expo">Expo</a>
<a href="/admin">Admin: pairing, devices, health</a>
</main>`,
  ),
);

// Gzip copies, deterministic (no name, no mtime in the header).
for (const dir of [out, path.join(out, 'assets')]) {
  for (const f of fs.readdirSync(dir)) {
    const p = path.join(dir, f);
    if (!fs.statSync(p).isFile() || f.endsWith('.gz')) continue;
    fs.writeFileSync(`${p}.gz`, zlib.gzipSync(fs.readFileSync(p), { level: 9 }));
  }
}
console.log(`built ${out}`);
