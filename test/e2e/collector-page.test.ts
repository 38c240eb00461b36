// The collector's web page in a real browser (Debian's chromium driven by playwright-core): a real
// collector process with a token, known events ingested through the real ingest route, the page
// loaded with the token in its fragment. The tables and the chart show exactly that data, a filter
// updates the URL and the table, the URL's filters are read back on load, and any console error,
// page error, failed request or request beyond the collector fails the test. Screenshot:
// test-output/collector-page.png (and -filtered.png) under the repository root.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { repoRoot } from '../../src/kernel/paths.js';
import { call, ndjson, postBatch, startCollector, tempDir } from '../helpers/collector-process.js';
import { acceptRecord, httpRecord, probeRecord } from '../helpers/collector-records.js';

const CHROMIUM = '/usr/bin/chromium';
const OUT = join(repoRoot, 'test-output');
const TOKEN = 'page-test-token-3f9a';
const auth = { authorization: `Bearer ${TOKEN}` };
// The query routes beside /v1/events that the page asks for; a collector without one must make the
// page say so, not break it.
const ROUTES = ['/v1/connections/series', '/v1/clients/top', '/v1/balance', '/v1/agents', '/v1/hops/distribution', '/v1/probes'];

/** i-th accept record of an agent's service, placed a few seconds ago so every range shows it. */
function recentAccept(i: number, local: string, ageMs: number) {
  return { ...acceptRecord(i), time: new Date(Date.now() - ageMs).toISOString(), local };
}

async function rows(page: Page, table: string): Promise<string[][]> {
  return page.$$eval(`#${table} tbody tr`, (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
}

async function loadedAfter(page: Page, n: number): Promise<void> {
  await page.waitForFunction((k) => Number(document.body.dataset.loaded ?? 0) > k, n, { timeout: 15_000 });
}

const loadCount = (page: Page) => page.evaluate(() => Number(document.body.dataset.loaded ?? 0));

test('the collector page shows ingested data, filters through the URL, and raises no error', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
  const c = await startCollector(join(dir, 'page.duckdb'), { track: t, args: ['--token-file', join(dir, 'token')] });

  const gw1 = [0, 1, 2].map((i) => recentAccept(i, '10.0.0.2:80', 3000 + i));
  const gw2 = [10, 11].map((i) => recentAccept(i, '10.0.0.3:443', 2000 + i));
  // Its path is markup: the page must show it as text.
  const web = { ...httpRecord(5), path: '/item/<img src=x onerror=alert(1)>', time: new Date(Date.now() - 1000).toISOString() };
  const probes = [probeRecord(1, 'run9', 'pod-a'), probeRecord(2, 'run9', 'pod-b')];
  for (const [agent, cap, batch, recs] of [['gw-1', 'accept', 'r1-1', gw1], ['gw-2', 'accept', 'r2-1', gw2], ['gw-1', 'http', 'r1-2', [web]],
    ['prober', 'probe', 'p1-1', probes]] as const) {
    const r = await postBatch(c.url, agent, cap, batch, ndjson(recs as object[]), auth);
    assert.equal(r.status, 200, r.text);
  }
  // Which routes this collector serves decides what each panel must show: its data or the note.
  const served = new Map<string, boolean>();
  for (const r of ROUTES) served.set(r, (await call(`${c.url}${r}?since=1h`, 'GET', undefined, auth)).status !== 404);

  const browser = await chromium.launch({ executablePath: CHROMIUM, timeout: 30_000,
    args: ['--no-sandbox', '--disable-background-networking', '--no-first-run', '--disable-component-update'] });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  page.setDefaultTimeout(15_000);
  const problems: string[] = [];
  const expected404 = (url: string) => { const u = new URL(url); return ROUTES.includes(u.pathname) && served.get(u.pathname) === false; };
  // Nothing leaves the collector: any other address is refused and counted.
  await page.route('**/*', (route) => {
    const u = new URL(route.request().url());
    if (u.origin === c.url) return route.continue();
    problems.push(`request beyond the collector: ${u.href}`);
    return route.abort();
  });
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    // Chromium logs every 4xx answer as a console error; a 404 from a route this collector does not serve is the one expected.
    if (/status of 404/.test(m.text()) && expected404(m.location().url)) return;
    problems.push(`console: ${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => { if (r.failure()?.errorText !== 'net::ERR_ABORTED') problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`); });
  page.on('response', (r) => { if (r.status() >= 400 && !(r.status() === 404 && expected404(r.url()))) problems.push(`HTTP ${r.status()}: ${r.url()}`); });

  await page.goto(`${c.url}/?since=1h#token=${TOKEN}`);
  await loadedAfter(page, 0);
  assert.equal(new URL(page.url()).hash, '', 'the token leaves the address bar');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('tcplens-collector-token')), TOKEN);

  const all = await rows(page, 't-events');
  assert.deepEqual(all.map((r) => [r[1], r[2], r[3], r[4]]), [
    ...gw1.map((e) => ['accept', 'gw-1', e.local, e.client]), ...gw2.map((e) => ['accept', 'gw-2', e.local, e.client]),
    ['http', 'gw-1', web.server, web.client]]);
  assert.equal(all[5][5], 'GET svc.example/item/<img src=x onerror=alert(1)> → 200 in 1.25 ms');
  assert.equal(await page.locator('#t-events img').count(), 0);
  // The agent filter offers the agents the data names.
  assert.deepEqual(await page.$$eval('#f-agent option', (o) => o.map((x) => (x as HTMLOptionElement).value)), ['', 'gw-1', 'gw-2', 'prober']);

  const note = (id: string) => page.$eval(`#${id} .note`, (e) => e.textContent ?? '');
  for (const [route, id, check] of [
    ['/v1/agents', 'p-agents', async () => assert.deepEqual((await rows(page, 't-agents')).map((r) => [r[0], r[5]]), [['gw-1', '4'], ['gw-2', '2'], ['prober', '2']])],
    // Real clients by address: the port of each connection is not the client.
    ['/v1/clients/top', 'p-clients', async () => assert.deepEqual((await rows(page, 't-clients')).map((r) => r[0]).sort(), [...gw1, ...gw2].map((e) => e.client.replace(/:\d+$/, '')).sort())],
    ['/v1/connections/series', 'p-connections', async () => {
      assert.equal(await page.$eval('#chart-connections', (e) => (e as HTMLElement).dataset.series), '2');
      assert.equal(await page.locator('#chart-connections canvas').count(), 1);
    }],
  ] as const) {
    if (served.get(route)) await check();
    else assert.match(await note(id), new RegExp(`not available: this collector does not serve v1${route.slice(3).replace(/\//g, '\\/')}`));
  }
  mkdirSync(OUT, { recursive: true });
  await page.screenshot({ path: join(OUT, 'collector-page.png'), fullPage: true });

  // A filter: the URL says so and the table narrows to that agent.
  let n = await loadCount(page);
  await page.selectOption('#f-agent', 'gw-2');
  await loadedAfter(page, n);
  assert.equal(new URL(page.url()).searchParams.get('agent'), 'gw-2');
  assert.deepEqual((await rows(page, 't-events')).map((r) => r[4]), gw2.map((e) => e.client));
  // A service filter on top, typed in: only that service's events.
  n = await loadCount(page);
  await page.fill('#f-service', '10.0.0.2:80');
  await page.click('#filters button[type=submit]');
  await loadedAfter(page, n);
  assert.equal(new URL(page.url()).searchParams.get('service'), '10.0.0.2:80');
  assert.deepEqual(await rows(page, 't-events'), []);
  assert.equal(await note('p-events'), 'no events in this range');

  // The probe-run view: its own URL, the overview hidden, a run id asked for.
  await page.click('#tab-probe');
  assert.equal(new URL(page.url()).searchParams.get('view'), 'probe');
  assert.equal(await page.locator('#view-overview').isHidden(), true);
  assert.equal(await page.locator('#view-probe').isVisible(), true);
  assert.equal(await note('p-probes'), 'give a probe run id above');
  n = await loadCount(page);
  await page.selectOption('#f-agent', ''); // the run's probes come from agent prober
  await loadedAfter(page, n);
  n = await loadCount(page);
  await page.fill('#f-run', 'run9');
  await page.click('#filters button[type=submit]');
  await loadedAfter(page, n);
  assert.equal(new URL(page.url()).searchParams.get('run'), 'run9');
  if (served.get('/v1/probes')) {
    assert.deepEqual((await rows(page, 't-probes')).map((r) => [r[0], r[1], r[4]]), [['run9-1', '200', 'pod-a'], ['run9-2', '200', 'pod-b']]);
  } else {
    assert.match(await note('p-probes'), /not available: this collector does not serve v1\/probes/);
  }

  // The URL's filters are read back on a fresh load (the token stays in this tab's sessionStorage).
  await page.goto(`${c.url}/?since=1h&agent=gw-1&service=10.0.0.2:80`);
  await loadedAfter(page, 0);
  assert.equal(await page.$eval('#f-agent', (e) => (e as HTMLSelectElement).value), 'gw-1');
  assert.equal(await page.$eval('#f-service', (e) => (e as HTMLInputElement).value), '10.0.0.2:80');
  assert.deepEqual((await rows(page, 't-events')).map((r) => r[4]), gw1.map((e) => e.client));
  await page.screenshot({ path: join(OUT, 'collector-page-filtered.png'), fullPage: true });

  // Live: what arrives now shows on the next poll (every 5 s), without a reload.
  const late = recentAccept(3, '10.0.0.2:80', 0);
  n = await loadCount(page);
  assert.equal((await postBatch(c.url, 'gw-1', 'accept', 'r1-3', ndjson([late]), auth)).status, 200);
  await loadedAfter(page, n);
  assert.deepEqual((await rows(page, 't-events')).map((r) => r[4]), [...gw1, late].map((e) => e.client));

  assert.deepEqual(problems, []);
  await browser.close();
  assert.equal(await c.stop(), 0);
});

test('without the token the page asks for one and loads once it is given', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
  const c = await startCollector(join(dir, 'page.duckdb'), { track: t, args: ['--token-file', join(dir, 'token')] });
  const gw = [recentAccept(1, '10.0.0.2:80', 1000)];
  assert.equal((await postBatch(c.url, 'gw-1', 'accept', 'r-1', ndjson(gw), auth)).status, 200);
  const browser = await chromium.launch({ executablePath: CHROMIUM, timeout: 30_000, args: ['--no-sandbox', '--disable-background-networking', '--no-first-run'] });
  t.after(() => browser.close());
  const page = await browser.newPage();
  page.setDefaultTimeout(15_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${c.url}/`);
  await page.waitForSelector('#token-form:not([hidden])');
  assert.match(await page.$eval('#status', (e) => e.textContent ?? ''), /needs a token/);
  await page.fill('#token-input', TOKEN);
  await page.click('#token-form button');
  await loadedAfter(page, 0);
  assert.equal(await page.locator('#token-form').isHidden(), true);
  assert.deepEqual((await rows(page, 't-events')).map((r) => r[4]), gw.map((e) => e.client));
  assert.deepEqual(errors, []);
  await browser.close();
  await c.stop();
});
