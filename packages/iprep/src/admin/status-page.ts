/**
 * The live status page served at `/`: one self-contained document (inline CSS
 * and script, nothing fetched from elsewhere) that polls `/status.json` every
 * second and calls the admin API for explain, decisions and reload.
 *
 * It is written as files in status-page/: index.html, which links style.css and
 * includes app.js (plain browser script) so that it opens as it is in a browser,
 * and this module inlines both into it. The files are read once, when the first
 * admin server is made, from the package's own src/admin/status-page/ (shipped
 * with the package): this module is two folders below the package root whether
 * it runs from src/ (tsx) or from dist/, so the page served is always the one
 * edited, with no copy to make at build time nor to go stale.
 *
 * Everything the server sends back (list names, sources, errors) is put in the
 * page as text, never as markup. The script asks for the bearer token when the
 * API answers 401 and keeps it in sessionStorage.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface StatusPage {
  readonly html: string;
  /** Allows the page's inline style and script by their hashes, requests to the server it came from, nothing else. */
  readonly contentSecurityPolicy: string;
}

const ASSETS = fileURLToPath(new URL('../../src/admin/status-page/', import.meta.url));

/** The two tags index.html includes its assets with; each is replaced by the inline element. */
const INCLUDES = [
  { tag: (name: string) => `<link rel="stylesheet" href="${name}">`, file: 'style.css', element: 'style' },
  { tag: (name: string) => `<script src="${name}"></script>`, file: 'app.js', element: 'script' },
] as const;

let loaded: StatusPage | undefined;

/** The page from the package's own assets, read on first use and kept. Throws if they are missing or unfit. */
export function statusPage(): StatusPage {
  loaded ??= readStatusPage(ASSETS);
  return loaded;
}

/** Reads index.html, style.css and app.js from `folder` and makes them one document. */
export function readStatusPage(folder: string): StatusPage {
  const read = (file: string): string => {
    try {
      return readFileSync(join(folder, file), 'utf8');
    } catch (error) {
      throw new Error(`status page: cannot read ${join(folder, file)}: ${(error as Error).message}`);
    }
  };
  let html = read('index.html');
  const hashes: Record<(typeof INCLUDES)[number]['element'], string> = { style: '', script: '' };
  for (const { tag, file, element } of INCLUDES) {
    const parts = html.split(tag(file));
    if (parts.length !== 2) throw new Error(`status page: index.html must include ${file} once, not ${parts.length - 1} times`);
    const text = `\n${read(file)}`;
    // Inline, the text ends at the first closing tag of its element, whatever follows.
    if (text.toLowerCase().includes(`</${element}`)) throw new Error(`status page: ${file} holds "</${element}": it would end its element early`);
    html = `${parts[0]}<${element}>${text}</${element}>${parts[1]}`;
    hashes[element] = `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
  }
  const outside = /<script\b[^>]*\bsrc\s*=[^>]*>|<link\b[^>]*\bstylesheet\b[^>]*>/i.exec(html);
  if (outside !== null) throw new Error(`status page: index.html refers to ${outside[0]}: the page must stand alone`);
  return {
    html,
    contentSecurityPolicy:
      `default-src 'none'; script-src ${hashes.script}; style-src ${hashes.style}; connect-src 'self'; img-src data:; ` +
      "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  };
}
