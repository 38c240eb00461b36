// The collector's page: plain DOM, no framework. Everything that comes from the data goes in as
// text (textContent, never innerHTML). Filters live in the URL (?view=&since=&service=&agent=&run=)
// and are read back from it on load; the token comes from #token=... or the form, kept in
// sessionStorage. Every query is small and bounded (limits, aggregates), so the page stays quick
// however many events the collector holds; a route the collector does not serve shows a note.
'use strict';

const POLL_MS = 5000;
const TOKEN_KEY = 'tcplens-collector-token';
const FILTER_KEYS = ['view', 'since', 'service', 'agent', 'run'];
const DEFAULTS = { view: 'overview', since: '15m', service: '', agent: '', run: '' };
const $ = (id) => document.getElementById(id);

let state = readUrl();
let timer = null;
let inflight = null;
let chart = null;

function readUrl() {
  const p = new URLSearchParams(location.search);
  const s = {};
  for (const k of FILTER_KEYS) s[k] = p.get(k) ?? DEFAULTS[k];
  if (s.view !== 'probe') s.view = 'overview';
  return s;
}

function writeUrl() {
  const p = new URLSearchParams();
  for (const k of FILTER_KEYS) if (state[k] && state[k] !== DEFAULTS[k]) p.set(k, state[k]);
  const q = p.toString();
  history.pushState(null, '', q ? `?${q}` : location.pathname);
}

function takeTokenFromFragment() {
  const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (!m) return;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
  history.replaceState(null, '', location.pathname + location.search); // the token leaves the address bar
}

/** el('td', {class: 'num'}, 'text', childNode...) with text set as text, never parsed as markup. */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) e.setAttribute(k, String(v));
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c === null || c === undefined ? '' : String(c)));
  return e;
}

const fmt = {
  n: (v) => (v === null || v === undefined ? '–' : Number(v).toLocaleString('en-US')),
  ms: (v) => (v === null || v === undefined ? '–' : `${Number(v).toFixed(Number(v) < 10 ? 2 : 1)} ms`),
  pct: (v) => (v === null || v === undefined ? '–' : `${(Number(v) * 100).toFixed(1)}%`),
  time: (v) => (v ? new Date(v).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '–'),
};

class NotServed extends Error {}
class Unauthorized extends Error {}

async function api(path, params, signal) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v !== null && v !== undefined) q.set(k, v);
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.authorization = `Bearer ${token}`;
  const r = await fetch(`${path}?${q}`, { headers, signal, cache: 'no-store' });
  if (r.status === 404) throw new NotServed(path);
  if (r.status === 401) throw new Unauthorized();
  const body = await r.json().catch(() => null);
  if (!r.ok) throw new Error(body?.error ? `${body.error.code}: ${body.error.message}` : `${path}: HTTP ${r.status}`);
  return body;
}

function fillRows(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function setNote(panel, text) {
  panel.querySelector('.note').textContent = text;
}

/** Runs one panel's query and render; its failure is that panel's note, not the page's. */
async function panel(id, load, signal) {
  const p = $(id);
  try {
    setNote(p, '');
    await load();
    return null;
  } catch (e) {
    if (e instanceof Unauthorized || signal.aborted) throw e;
    setNote(p, e instanceof NotServed ? `not available: this collector does not serve ${e.message}` : String(e.message ?? e));
    return e;
  }
}

const common = () => ({ since: state.since, agent: state.agent });

function renderClients(d) {
  fillRows($('t-clients').tBodies[0], d.clients.map((c) => el('tr', null,
    el('td', null, c.client), el('td', null, c.service), el('td', { class: 'num' }, fmt.n(c.connections)),
    el('td', { class: 'num' }, fmt.n(c.agents)), el('td', null, fmt.time(c.last)))));
  if (!d.clients.length) setNote($('p-clients'), 'no connections in this range');
  const services = new Set(d.clients.map((c) => c.service));
  $('services').replaceChildren(...[...services].sort().map((s) => el('option', { value: s })));
}

function renderSeries(d) {
  const box = $('chart-connections');
  // The routes answer only the steps that had connections (aligned to multiples of the step):
  // every step of the range is drawn, a missing one as 0.
  const stepMs = d.step_s * 1000;
  const now = Date.now();
  const first = Math.floor((now - rangeSeconds(state.since) * 1000) / stepMs) * stepMs;
  const seen = d.series.flatMap((s) => s.points.map((p) => p[0]));
  const times = [...new Set([...Array.from({ length: Math.floor((now - first) / stepMs) + 1 }, (_, i) => first + i * stepMs), ...seen])].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const data = [times.map((t) => t / 1000)];
  for (const s of d.series) {
    const ys = new Array(times.length).fill(0);
    for (const [t, n] of s.points) ys[index.get(t)] = n / d.step_s;
    data.push(ys);
  }
  const colors = ['#3b6fd8', '#d8703b', '#2f9e5b', '#9b3bd8', '#d83b6f', '#3bb8d8', '#8a8a2a', '#555'];
  const series = [{}, ...d.series.map((s, i) => ({ label: s.service, stroke: colors[i % colors.length], width: 1.5, spanGaps: false }))];
  const width = Math.max(300, box.clientWidth - 8);
  const key = series.map((s) => s.label ?? '').join('\n');
  if (chart && chart.tcplensKey === key) {
    chart.setData(data);
    if (Math.abs(chart.width - width) > 4) chart.setSize({ width, height: 220 });
  } else {
    chart?.destroy();
    chart = new uPlot({ width, height: 220, series, axes: [{}, { label: 'conn/s' }], scales: { x: { time: true } }, legend: { live: false } }, data, box);
    chart.tcplensKey = key;
  }
  box.dataset.series = String(d.series.length);
  box.dataset.points = String(seen.length);
  if (!d.series.length) setNote($('p-connections'), 'no connections in this range');
}

function renderBalance(d) {
  const v = d.verdict;
  const verdict = $('verdict');
  if (!v || v.balanced === null || v.balanced === undefined) {
    verdict.textContent = 'no verdict yet (not enough samples)';
    verdict.className = 'verdict';
  } else {
    verdict.textContent = `${v.balanced ? 'balanced' : 'skewed'}${v.tier !== undefined && v.tier !== null ? ` at tier ${v.tier}` : ''}` +
      `${v.node ? ` (${v.node})` : ''}, ${fmt.n(v.samples)} samples${v.confident ? '' : ', not yet confident'}`;
    verdict.className = `verdict ${v.balanced ? 'ok' : 'bad'}`;
  }
  $('tiers').replaceChildren(...d.tiers.map((t) => {
    const rows = t.backends.map((b) => {
      const bar = el('span', { class: 'bar' });
      bar.style.width = `${Math.round(Math.max(0, Math.min(1, Number(b.share) || 0)) * 80)}px`;
      return el('tr', null, el('td', null, b.name), el('td', { class: 'num' }, fmt.n(b.requests)),
        el('td', null, bar, ' ', fmt.pct(b.share)), el('td', { class: 'num' }, fmt.pct(b.expected_share)),
        el('td', { class: 'num' }, fmt.ms(b.p50_ms)), el('td', { class: 'num' }, fmt.ms(b.p99_ms)), el('td', { class: 'num' }, fmt.n(b.errors)));
    });
    const head = el('tr', null, ...['backend', 'requests', 'share', 'expected', 'p50', 'p99', 'errors'].map((h) => el('th', null, h)));
    const skew = t.skewed ? 'skewed' : 'even';
    return el('div', { class: 'tier' },
      el('h3', null, `tier ${t.tier}: ${t.chooser} — ${fmt.n(t.samples)} samples, ${skew}${t.confident ? '' : ' (not yet confident)'}` +
        `${t.p_value !== null && t.p_value !== undefined ? `, p=${Number(t.p_value).toPrecision(2)}` : ''}`),
      el('table', null, el('thead', null, head), el('tbody', null, ...rows)));
  }));
}

function renderAgents(d) {
  fillRows($('t-agents').tBodies[0], d.agents.map((a) => el('tr', null,
    el('td', null, a.name), el('td', null, (a.capabilities ?? []).join(', ')), el('td', null, fmt.time(a.last_seen)),
    el('td', null, a.version ?? '–'), el('td', { class: 'num' }, fmt.n(a.batches)), el('td', { class: 'num' }, fmt.n(a.events)),
    el('td', { class: 'num' }, fmt.n(a.drops)))));
  const sel = $('f-agent');
  const names = new Set([...sel.options].map((o) => o.value));
  for (const a of d.agents) if (!names.has(a.name)) sel.append(el('option', { value: a.name }, a.name));
  sel.value = state.agent;
}

function renderHops(d) {
  fillRows($('t-hops').tBodies[0], d.buckets.map((b) => el('tr', null, el('td', { class: 'num' }, b.hops ?? '?'), el('td', { class: 'num' }, fmt.n(b.count)))));
  if (!d.buckets.length) setNote($('p-hops'), 'no hop results in this range');
}

/** One line of detail per record, whatever its capability. */
function detail(e) {
  switch (e.capability) {
    case 'accept': return `${e.summary ? 'summary ' : ''}count ${e.count}${e.hops !== null ? `, ${e.hops} hops` : ''}${e.trusted === false ? ', untrusted TOA' : ''}`;
    case 'http': return `${e.method} ${e.host ?? ''}${e.path} → ${e.status ?? e.error ?? '?'}${e.latency_ms !== null ? ` in ${fmt.ms(e.latency_ms)}` : ''}`;
    case 'hops': return `${e.target}: ${e.status}${e.hops !== null ? `, ${e.hops} hops` : ''}`;
    case 'probe': return `run ${e.run} probe ${e.probe}${e.status !== null && e.status !== undefined ? ` → ${e.status}` : ''}`;
    default: return '';
  }
}

function renderEvents(d) {
  const sel = $('f-agent');
  const names = new Set([...sel.options].map((o) => o.value));
  for (const e of d.events) if (!names.has(e.agent)) { names.add(e.agent); sel.append(el('option', { value: e.agent }, e.agent)); }
  sel.value = state.agent;
  fillRows($('t-events').tBodies[0], d.events.map((e) => el('tr', null,
    el('td', null, fmt.time(e.time)), el('td', null, e.capability), el('td', null, e.agent),
    el('td', null, e.local ?? e.server ?? e.target ?? ''), el('td', null, e.client ?? ''), el('td', null, detail(e)))));
  if (!d.events.length) setNote($('p-events'), 'no events in this range');
}

function renderProbes(d) {
  $('probe-run').textContent = d.run ?? '';
  const dist = d.distribution ?? {};
  const part = (name, m) => `${name}: ${Object.entries(m ?? {}).map(([k, n]) => `${k} ${n}`).join(', ') || '–'}`;
  $('probe-distribution').textContent = `${part('gateways', dist.gateways)}; ${part('pods', dist.pods)}`;
  fillRows($('t-probes').tBodies[0], d.probes.map((p) => el('tr', null,
    el('td', null, p.id), el('td', null, p.status ?? '–'), el('td', { class: 'num' }, fmt.ms(p.latency_ms)),
    el('td', null, p.gateway ?? '–'), el('td', null, p.pod ?? '–'),
    el('td', null, ...(p.hops ?? []).map((h) => el('span', { class: 'hop', title: `${h.client} → ${h.server}` },
      `${h.agent}${h.netns ? `/${h.netns}` : ''} (${h.leg}${h.latency_ms !== null && h.latency_ms !== undefined ? `, ${fmt.ms(h.latency_ms)}` : ''})`))))));
}

async function refresh() {
  inflight?.abort();
  const ctl = new AbortController();
  inflight = ctl;
  const s = ctl.signal;
  const started = performance.now();
  const svc = { service: state.service };
  try {
    let jobs;
    if (state.view === 'probe') {
      jobs = state.run
        ? [panel('p-probes', async () => renderProbes(await api('v1/probes', { run: state.run, agent: state.agent }, s)), s)]
        : [Promise.resolve(setNote($('p-probes'), 'give a probe run id above'))];
    } else {
      jobs = [
        panel('p-connections', async () => renderSeries(await api('v1/connections/series', { ...common(), ...svc, step: stepFor(state.since) }, s)), s),
        panel('p-clients', async () => renderClients(await api('v1/clients/top', { ...common(), ...svc, limit: 20 }, s)), s),
        panel('p-balance', async () => renderBalance(await api('v1/balance', common(), s)), s),
        panel('p-agents', async () => renderAgents(await api('v1/agents', common(), s)), s),
        panel('p-hops', async () => renderHops(await api('v1/hops/distribution', common(), s)), s),
        panel('p-events', async () => renderEvents(await api('v1/events', { ...common(), local: state.service, limit: 100 }, s)), s),
      ];
    }
    await Promise.all(jobs);
    if (s.aborted) return;
    $('token-form').hidden = true;
    status(`updated ${new Date().toLocaleTimeString()} in ${Math.round(performance.now() - started)} ms; every ${POLL_MS / 1000} s`);
    document.body.dataset.loaded = String(Number(document.body.dataset.loaded ?? 0) + 1);
  } catch (e) {
    if (s.aborted) return;
    if (e instanceof Unauthorized) {
      $('token-form').hidden = false;
      status(sessionStorage.getItem(TOKEN_KEY) ? 'the token was refused' : 'this collector needs a token', true);
    } else {
      status(String(e.message ?? e), true);
    }
  } finally {
    if (inflight === ctl) inflight = null;
  }
}

/** '15m' -> 900: the range the filter names, in seconds. */
function rangeSeconds(since) {
  const m = /^(\d+)([smhd])$/.exec(since);
  return m ? Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2]] : 900;
}

/** A chart of about 60-120 points whatever the range. */
function stepFor(since) {
  const s = rangeSeconds(since);
  for (const step of [10, 30, 60, 300, 900, 3600, 4 * 3600]) if (s / step <= 120) return `${step}s`;
  return '86400s';
}

function status(text, error = false) {
  const p = $('status');
  p.textContent = text;
  p.className = error ? 'error' : '';
}

let generation = 0;

/** Refreshes now and then every POLL_MS; a newer poll (a filter changed) supersedes the older one's timer. */
function poll() {
  clearTimeout(timer);
  const mine = ++generation;
  void refresh().finally(() => { if (mine === generation && !document.hidden) timer = setTimeout(poll, POLL_MS); });
}

function showState() {
  const f = $('filters');
  if (![...$('f-since').options].some((o) => o.value === state.since)) $('f-since').append(el('option', { value: state.since }, state.since));
  f.since.value = state.since;
  f.service.value = state.service;
  if (![...$('f-agent').options].some((o) => o.value === state.agent)) $('f-agent').append(el('option', { value: state.agent }, state.agent));
  f.agent.value = state.agent;
  f.run.value = state.run;
  $('view-overview').hidden = state.view !== 'overview';
  $('view-probe').hidden = state.view !== 'probe';
  document.body.classList.toggle('probe', state.view === 'probe');
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.view === state.view);
}

function apply(changes) {
  state = { ...state, ...changes };
  writeUrl();
  showState();
  poll();
}

function start() {
  takeTokenFromFragment();
  showState();
  $('filters').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const f = ev.target;
    apply({ since: f.since.value, service: f.service.value.trim(), agent: f.agent.value, run: f.run.value.trim() });
  });
  for (const id of ['f-since', 'f-agent']) $(id).addEventListener('change', () => $('filters').requestSubmit());
  for (const a of document.querySelectorAll('nav a')) {
    a.addEventListener('click', (ev) => { ev.preventDefault(); apply({ view: a.dataset.view }); });
  }
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $('token-input').value);
    $('token-input').value = '';
    poll();
  });
  addEventListener('popstate', () => { state = readUrl(); showState(); poll(); });
  document.addEventListener('visibilitychange', () => { if (!document.hidden) poll(); });
  poll();
}

start();
