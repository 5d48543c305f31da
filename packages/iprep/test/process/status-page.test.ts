/**
 * The status page in a real headless Chromium, against the admin server with
 * live metrics: what it shows, the explain form, decisions and the token prompt.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type BrowserContext, type Page, chromium } from 'playwright-core';
import { silentLogger } from 'spop';
import { AdminServer, ReputationMetrics } from '../../src/admin/index.js';
import type { IpAction } from '../../src/types.js';
import { VERSION } from '../../src/version.js';
import { FakeReputationService } from '../admin-fixtures.js';

// Debian's, which `npm test` installs when missing (scripts/provision.mjs), or any Chromium named by CHROMIUM_BIN.
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const SCREENSHOT = '/tmp/status-page.png';
const TOKEN = 'page-token-42';

interface Running {
  readonly server: AdminServer;
  readonly service: FakeReputationService;
  readonly metrics: ReputationMetrics;
  readonly url: string;
}

async function startAdmin(token?: string): Promise<Running> {
  const service = new FakeReputationService();
  const now = Date.now();
  service.listStatus = [
    { name: 'spamhaus-drop', format: 'spamhaus-json', origin: '/etc/iprep/drop_v4.json', entries: 1234, loadedAt: now - 90_000, lastError: null },
    {
      name: 'firehol-level1',
      format: 'netset',
      origin: 'https://lists.example.test/firehol_level1.netset',
      entries: 4567,
      loadedAt: now - 7_200_000,
      lastError: null,
    },
    {
      name: 'tor-exits',
      format: 'tor-exits',
      origin: 'https://lists.example.test/torbulkexitlist',
      entries: 0,
      loadedAt: null,
      lastError: 'fetch failed: HTTP 503 <b>not bold</b>',
    },
  ];
  const metrics = new ReputationMetrics({ defaultMetrics: false });
  metrics.setListsProvider(() => service.lists());
  metrics.setStoreProvider(() => service.store());
  metrics.setDecisionsProvider(() => service.listDecisions().length);
  metrics.setAgentGauges(() => ({ connections: 2, inFlight: 3 }));
  metrics.reloaded(true, 37);
  const server = new AdminServer({ service, metrics, logger: silentLogger, ...(token === undefined ? {} : { token }) });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  return { server, service, metrics, url: `http://127.0.0.1:${port}/` };
}

/** Traffic as the engine would report it: 60 messages, most allowed, some denied by a list. */
function observeTraffic(metrics: ReputationMetrics): void {
  const traffic: [number, number, IpAction, string, string][] = [
    [40, 100, 'allow', 'none', 'default'],
    [12, 0, 'deny', 'hijacked', 'spamhaus-drop'],
    [5, 35, 'captcha', 'anonymizer:tor', 'tor-exits'],
    [3, 72, 'log', 'hosting:aws', 'aws'],
  ];
  for (const [count, score, action, category, source] of traffic) {
    for (let i = 0; i < count; i++) metrics.observeVerdict({ score, action, category, source, matches: [] }, 0.000012);
  }
}

async function text(page: Page, selector: string): Promise<string> {
  // biome-ignore lint/performance/useDomNodeTextContent: Playwright's innerText is the text as rendered, which is what is asserted
  return (await page.locator(selector).innerText()).trim();
}

// Page-side code is given as text: the tests are compiled without the DOM typings (evaluate runs it outside the page's CSP).

/** Rows of a table body as arrays of cell texts. */
async function rows(page: Page, tableSelector: string): Promise<string[][]> {
  const selector = JSON.stringify(`${tableSelector} tbody tr`);
  return page.evaluate<string[][]>(`Array.from(document.querySelectorAll(${selector}), (tr) => Array.from(tr.cells, (c) => c.textContent.trim()))`);
}

/**
 * Waits until the element's whole text is `expected`. (A locator filter, not waitForFunction: the page's
 * Content-Security-Policy forbids the string evaluation waitForFunction polls with.)
 */
async function waitForText(page: Page, selector: string, expected: string, timeout = 15_000): Promise<void> {
  const exactly = new RegExp(`^${expected.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
  await page.locator(selector).filter({ hasText: exactly }).waitFor({ timeout });
}

describe('status page in Chromium', () => {
  let context: BrowserContext | undefined;
  let profile: string | undefined;
  let open: Running;
  let guarded: Running;
  const pageErrors: string[] = [];

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `Chromium is missing at ${CHROMIUM}: apt-get install chromium, or set CHROMIUM_BIN`);
    open = await startAdmin();
    guarded = await startAdmin(TOKEN);
    profile = mkdtempSync(join(tmpdir(), 'iprep-status-page-'));
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    observeTraffic(guarded.metrics);
    context.on('page', (page) => {
      page.on('pageerror', (error) => pageErrors.push(`pageerror: ${error.message}`));
      page.on('console', (message) => {
        if (message.type() === 'error' && !/status of 40[01]/.test(message.text())) pageErrors.push(`console: ${message.text()}`);
      });
    });
  });

  after(async () => {
    await context?.close();
    await open?.server.close();
    await guarded?.server.close();
    if (profile !== undefined) rmSync(profile, { recursive: true, force: true });
  });

  it('shows throughput, scores, actions, top categories and sources, lists and store from live data', async () => {
    const page = await context!.newPage();
    // Just before loading: the page shows the rate over the last 10 s.
    observeTraffic(open.metrics);
    await page.goto(open.url);
    await waitForText(page, '#total', '60');
    // The messages were counted in the second before the page loaded; once it is complete it shows in the rate.
    await waitForText(page, '#rate', '6');
    assert.equal(await text(page, '#connection'), 'live');
    assert.match(await text(page, '#latency'), /^12 µs \/ ≤ 25 µs$/);
    assert.equal(await text(page, '#agent'), '2 / 3');

    const points = (await page.locator('#spark-line').getAttribute('points'))!.split(' ');
    assert.equal(points.length, 60);
    const heights = new Set(points.map((p) => p.split(',')[1]));
    assert.ok(heights.size >= 2, 'the sparkline shows the burst');
    assert.match(await text(page, '#spark-peak'), /^peak 60\/s$/);

    const scores = await rows(page, '#scores');
    assert.equal(scores.length, 10);
    assert.deepEqual(scores[0]!.slice(0, 2), ['0–9', '12']);
    assert.deepEqual(scores[3]!.slice(0, 2), ['30–39', '5']);
    assert.deepEqual(scores[7]!.slice(0, 2), ['70–79', '3']);
    assert.deepEqual(scores[9]!.slice(0, 2), ['90–100', '40']);

    assert.deepEqual(
      (await rows(page, '#actions')).map((r) => r.slice(0, 2)),
      [
        ['allow', '40'],
        ['log', '3'],
        ['captcha', '5'],
        ['tarpit', '0'],
        ['deny', '12'],
      ],
    );
    assert.deepEqual((await rows(page, '#categories'))[0], ['none', '40']);
    assert.deepEqual(
      (await rows(page, '#sources')).map((r) => r[0]),
      ['default', 'spamhaus-drop', 'tor-exits', 'aws'],
    );

    const lists = await rows(page, '#lists');
    assert.equal(lists.length, 3);
    assert.deepEqual(lists[0]!.slice(0, 3), ['spamhaus-drop', 'spamhaus-json', '1,234']);
    assert.match(lists[0]![3]!, /^[12] min \d+ s ago$/); // loaded 90 s before the server started
    assert.match(lists[1]![3]!, /^2 h 0 min ago$/);
    assert.deepEqual(lists[2]!.slice(2, 4), ['0', 'never']);
    assert.equal(lists[2]![5], 'fetch failed: HTTP 503 <b>not bold</b>', 'server text is shown as text');
    assert.equal(await page.locator('#lists b').count(), 0);

    assert.equal(await text(page, '#store'), 'memory up');
    assert.match(await text(page, '#reloads'), /^1 ok, 0 failed · last ok in 37 ms, .+ ago$/);
    assert.doesNotMatch(await text(page, '#summary'), /worker/, 'one process: no worker count');
    await page.close();
  });

  it('shows the version, the top offending clients and the latest bans', async () => {
    const page = await context!.newPage();
    open.metrics.setTopClientsProvider(() => [
      { client: '192.0.2.66', count: 1500 },
      { client: '2001:db8:1:2::/64', count: 700 },
    ]);
    const until = Date.now() + 600_000;
    open.metrics.decisionAudited({
      op: 'ban',
      origin: 'behaviour',
      action: 'deny',
      received: false,
      ban: { client: '192.0.2.66', count: 601, offences: 2, until },
    });
    await page.goto(open.url);
    await waitForText(page, '#version', `spoa ${VERSION}`);
    assert.deepEqual(await rows(page, '#clients'), [
      ['192.0.2.66', '1,500'],
      ['2001:db8:1:2::/64', '700'],
    ]);
    const bans = await rows(page, '#bans');
    assert.equal(bans.length, 1);
    assert.deepEqual(bans[0]!.slice(1, 5), ['192.0.2.66', 'deny', '601', '2']);
    assert.match(bans[0]![0]!, /ago$/);
    assert.match(bans[0]![5]!, /^in (9|10) min/);
    await page.close();
  });

  it('shows the most seen countries and ASNs, and the geo databases', async () => {
    const page = await context!.newPage();
    await page.goto(open.url);
    await waitForText(page, '#version', `spoa ${VERSION}`);
    assert.equal(await page.locator('#geo').isHidden(), true, 'hidden without geo databases');
    open.metrics.setGeoProvider(() => ({
      top: 20,
      countries: [
        { value: 'FR', count: 1200 },
        { value: 'CN', count: 30 },
      ],
      asns: [{ value: 'AS64496', count: 900, name: '<b>Example</b> Net' }],
      databases: [
        {
          kind: 'country',
          path: '/geo/c.mmdb',
          networks: 550563,
          labels: 251,
          databaseType: 'geo-whois-asn-country',
          builtAt: null,
          loadedAt: Date.now(),
          lastError: null,
        },
        { kind: 'asn', path: '/geo/a.mmdb', networks: 12, labels: 3, databaseType: null, builtAt: null, loadedAt: Date.now(), lastError: 'a.mmdb: truncated' },
      ],
    }));
    await page.reload();
    await waitForText(page, '#countries tbody tr:first-child td:first-child', 'FR');
    assert.deepEqual(await rows(page, '#countries'), [
      ['FR', '1,200'],
      ['CN', '30'],
    ]);
    assert.deepEqual(await rows(page, '#asns'), [['AS64496 <b>Example</b> Net', '900']]);
    assert.equal(await text(page, '#geo-databases'), 'country: 550,563 networks (geo-whois-asn-country); asn: 12 networks, last error: a.mmdb: truncated');
    await page.screenshot({ path: '/tmp/status-page-geo.png', fullPage: true });
    await page.close();
  });

  it('shows a shared store’s sync age, change lag and queued writes, and its outage', async () => {
    const running = await startAdmin();
    running.service.storeHealth = { kind: 'redis', up: true, syncAgeMs: 420, changeLagMs: 3, pendingWrites: 0, droppedWrites: 0 };
    const page = await context!.newPage();
    try {
      await page.goto(running.url);
      await waitForText(page, '#store', 'redis up · in sync 0.4 s ago, last change applied 3 ms after its write');
      running.service.storeHealth = {
        kind: 'redis',
        up: false,
        detail: 'connect ECONNREFUSED 127.0.0.1:6379',
        syncAgeMs: 95_000,
        changeLagMs: 3,
        pendingWrites: 2,
        droppedWrites: 1,
      };
      await waitForText(
        page,
        '#store',
        'redis down – connect ECONNREFUSED 127.0.0.1:6379 · in sync 1 min 35 s ago, last change applied 3 ms after its write, 2 writes queued, 1 dropped',
      );
    } finally {
      await page.close();
      await running.server.close();
    }
  });

  it('with node:cluster workers: every worker’s figures, and how many answered', async () => {
    const clustered = await startAdmin();
    const other = new ReputationMetrics({ defaultMetrics: false });
    other.setAgentGauges(() => ({ connections: 5, inFlight: 0 }));
    observeTraffic(clustered.metrics);
    observeTraffic(other);
    let missing: number | null = 0;
    clustered.metrics.setPeers({ gather: async () => ({ parts: [JSON.parse(JSON.stringify(other.statusCounts())) as unknown], missing }) });
    const page = await context!.newPage();
    try {
      await page.goto(clustered.url);
      await waitForText(page, '#total', '120');
      assert.equal(await text(page, '#agent'), '7 / 3');
      assert.match(await text(page, '#summary'), /^up \d+ s · 2 workers · 3 lists · updated /);
      missing = 1;
      await page.locator('#summary').filter({ hasText: '2 workers (1 did not answer)' }).waitFor({ timeout: 5000 });
    } finally {
      await page.close();
      await clustered.server.close();
    }
  });

  it('explains an address: the verdict and every match', async () => {
    const page = await context!.newPage();
    await page.goto(open.url);
    await page.getByLabel('IP address').fill('192.0.2.7');
    await page.getByRole('button', { name: 'Explain' }).click();
    await page.locator('#matches').waitFor();
    const verdict = await text(page, '#verdict');
    assert.match(verdict, /^0\s+deny\s+category hijacked\s+source spamhaus-drop$/);
    const matches = await rows(page, '#matches');
    assert.deepEqual(matches, [
      ['list', 'spamhaus-drop', 'hijacked', '0', '', 'deny', '192.0.2.0/24 SBL000'],
      ['behaviour', 'behaviour:rate', 'behaviour:rate', '', '−20', '', '130 messages in 60 s'],
    ]);
    assert.ok(open.service.calls.includes('explain 192.0.2.7'));

    await page.getByLabel('IP address').fill('2001:db8::42');
    await page.getByRole('button', { name: 'Explain' }).click();
    await page.getByText('No list, decision or rule matches 2001:db8::42').waitFor();
    assert.match(await text(page, '#verdict'), /^100\s+allow/);

    await page.getByLabel('IP address').fill('300.1.2.3');
    await page.getByRole('button', { name: 'Explain' }).click();
    assert.match(await text(page, '#explain-result [role=alert]'), /not an IP address: "300\.1\.2\.3"/);
    await page.close();
  });

  it('adds and removes a decision', async () => {
    const page = await context!.newPage();
    await page.goto(open.url);
    await page.getByLabel('Address or CIDR').fill('198.51.100.0/24');
    await page.getByLabel('Action', { exact: true }).selectOption('captcha');
    await page.getByLabel('Duration', { exact: true }).fill('10m');
    await page.getByLabel('Reason', { exact: true }).fill('scraping');
    await page.getByRole('button', { name: 'Add decision' }).click();
    await page.getByRole('status').filter({ hasText: 'Added range:198.51.100.0/24' }).waitFor();
    await page.getByRole('button', { name: 'Remove decision range:198.51.100.0/24' }).waitFor();
    const [decision] = await rows(page, '#decisions');
    assert.deepEqual(decision!.slice(0, 6), ['range:198.51.100.0/24', 'captcha', '0', 'manual', 'scraping', 'api']);
    assert.equal(open.service.decisions.size, 1);

    await page.getByLabel('Address or CIDR').fill('not an address');
    await page.getByRole('button', { name: 'Add decision' }).click();
    await page.locator('#decision-message.error').waitFor();

    await page.getByRole('button', { name: 'Remove decision range:198.51.100.0/24' }).click();
    await page.getByRole('status').filter({ hasText: 'Removed range:198.51.100.0/24' }).waitFor();
    await waitForText(page, '#decisions tbody', 'No decisions');
    assert.deepEqual(await rows(page, '#decisions'), [['No decisions']]);
    assert.equal(open.service.decisions.size, 0);

    // A screenshot with every section filled, to look at.
    await open.service.addDecision({ value: '203.0.113.9', action: 'deny', reason: 'credential stuffing', durationMs: 3_600_000 });
    await page.reload();
    await page.getByRole('button', { name: 'Remove decision ip:203.0.113.9' }).waitFor();
    await page.getByLabel('IP address').fill('192.0.2.7');
    await page.getByRole('button', { name: 'Explain' }).click();
    await page.locator('#matches').waitFor();
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    await page.close();
  });

  it('asks for the token when one is configured, and sends it as a bearer token', async () => {
    const page = await context!.newPage();
    await page.goto(guarded.url);
    await page.getByLabel('Admin token').waitFor();
    assert.equal(await text(page, '#connection'), 'token needed');
    assert.equal(await text(page, '#total'), '–');

    await page.getByLabel('Admin token').fill('wrong');
    await page.getByRole('button', { name: 'Use token' }).click();
    await page.getByText('The token was refused; enter it again.').waitFor();

    await page.getByLabel('Admin token').fill(TOKEN);
    await page.getByRole('button', { name: 'Use token' }).click();
    await waitForText(page, '#total', '60');
    assert.equal(await page.locator('#token-form').isHidden(), true);
    assert.equal(await page.evaluate<string | null>(`sessionStorage.getItem('iprep-admin-token')`), TOKEN);

    await page.getByLabel('IP address').fill('192.0.2.1');
    await page.getByRole('button', { name: 'Explain' }).click();
    await page.locator('#matches').waitFor();

    // A reload keeps the token for this tab.
    await page.reload();
    await waitForText(page, '#total', '60');
    assert.equal(await page.locator('#token-form').isHidden(), true);
    await page.close();
  });

  it('ran without script errors or blocked resources', () => {
    assert.deepEqual(pageErrors, []);
  });
});
