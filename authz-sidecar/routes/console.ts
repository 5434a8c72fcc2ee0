import { readFileSync } from 'node:fs';
import * as responses from '../http/responses.ts';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { Router } from 'express';
import type { SidecarContext } from './context.ts';

const CONSOLE_DIR = fileURLToPath(new URL('../../console/', import.meta.url));
/** preact + hooks + htm in one ES module (13 KB), straight from the package: no build step, no CDN. */
const VENDOR_FILE = join(dirname(createRequire(import.meta.url).resolve('htm')), '..', 'preact', 'standalone.module.js');

/**
 * The admin console at /console: static files from the package (console/), and the preact+htm module from
 * node_modules. It uses only the public HTTP API with the token the user signs in with. The content security
 * policy allows nothing but this origin, so the console works offline and never loads anything from elsewhere.
 */
export function consoleRoutes(ctx: SidecarContext): Router {
  const r = Router();
  const vendor = readFileSync(VENDOR_FILE);
  ctx.routes.add({ method: 'get', path: '/console', tag: 'console', summary: 'The admin console (HTML; signs in with the admin token or an API key)', root: true, public: true, response: responses.staticFile, contentType: 'text/html' });
  ctx.routes.add({ method: 'get', path: '/console/{file}', tag: 'console', summary: "The console's static files", root: true, public: true, response: responses.staticFile, contentType: 'text/*' });
  ctx.routes.add({ method: 'get', path: '/console/vendor/preact-htm.js', tag: 'console', summary: 'preact + hooks + htm as one ES module (from the htm package)', root: true, public: true, response: responses.staticFile, contentType: 'text/javascript' });
  r.use('/console', (_req, res, next) => {
    res.setHeader('content-security-policy', "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('referrer-policy', 'no-referrer');
    res.setHeader('cache-control', 'no-cache');
    next();
  });
  r.get('/console/vendor/preact-htm.js', (_req, res) => {
    res.type('text/javascript').send(vendor);
  });
  r.get('/console', (req, res, next) => {
    // Relative URLs in the page resolve under /console/.
    if (!req.originalUrl.split('?')[0]!.endsWith('/')) return res.redirect(301, '/console/');
    next();
  });
  r.use('/console', express.static(CONSOLE_DIR, { index: 'index.html', fallthrough: true, dotfiles: 'deny' }));
  return r;
}
