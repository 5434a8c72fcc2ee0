#!/usr/bin/env node
/**
 * Launcher for the ScopeGate admin CLI, from any working directory:
 *   npx scopegate tenant list
 *
 * The CLI is TypeScript (cli/main.ts). Compiling it at every call cost about a second, so the launcher runs
 * one bundled ES module instead, built with esbuild (already installed: tsx uses it) into
 * node_modules/.cache/scopegate/ and rebuilt only when one of the files it was built from has changed since.
 * A call then costs Node's start plus loading one file.
 */
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const cacheDir = join(root, 'node_modules', '.cache', 'scopegate');
const bundle = join(cacheDir, 'cli.mjs');
const inputsFile = join(cacheDir, 'cli.inputs.json');

/** The bundle exists and none of the files it was built from (listed at build time) is newer. */
function bundleIsFresh() {
  try {
    const built = statSync(bundle).mtimeMs;
    const inputs = JSON.parse(readFileSync(inputsFile, 'utf8'));
    return inputs.every((file) => statSync(join(root, file)).mtimeMs <= built);
  } catch {
    return false;
  }
}

async function build() {
  const esbuild = await import('esbuild');
  mkdirSync(cacheDir, { recursive: true });
  const result = await esbuild.build({
    entryPoints: [join(root, 'cli', 'main.ts')],
    absWorkingDir: root,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  // Written under temporary names and renamed: two calls building at once never load a half-written file.
  const tmp = `${bundle}.${process.pid}.tmp`;
  writeFileSync(tmp, result.outputFiles[0].contents);
  writeFileSync(`${inputsFile}.${process.pid}.tmp`, JSON.stringify(Object.keys(result.metafile.inputs)));
  renameSync(`${inputsFile}.${process.pid}.tmp`, inputsFile);
  renameSync(tmp, bundle);
}

if (!bundleIsFresh()) await build();
const { run } = await import(pathToFileURL(bundle).href);

// Piping into `head` closes stdout early: that is not an error.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});
process.exitCode = await run(process.argv.slice(2), {
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
  env: process.env,
});
