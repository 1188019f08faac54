// smarthost web console: plain JavaScript against /api/v1/, no framework and
// nothing from the internet. The token lives in sessionStorage (this tab only)
// and travels only in the Authorization header; there are no cookies.
'use strict';

const $ = (sel) => document.querySelector(sel);
const $$ = (sel) => [...document.querySelectorAll(sel)];
const TOKEN_KEY = 'smarthost-token';
let token = sessionStorage.getItem(TOKEN_KEY) || '';
let current = null; // the message shown in the side panel
let entries = [];

class ApiError extends Error {
  constructor(status, body) { super(body && body.message ? body.message : `HTTP ${status}`); this.status = status; this.body = body; }
}

async function api(path, opts = {}) {
  const res = await fetch(`/api/v1/${path}`, { ...opts, headers: { Authorization: `Bearer ${token}`, ...(opts.body ? { 'Content-Type': 'application/json' } : {}), ...(opts.headers || {}) } });
  if (res.status === 401) { signOut('The token was refused. Sign in again.'); throw new ApiError(401, null); }
  const type = res.headers.get('content-type') || '';
  const body = type.includes('json') ? await res.json() : await res.text();
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v; else if (k.startsWith('on')) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const c of children.flat()) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function toast(text, bad = false) {
  const t = $('#toast');
  t.textContent = text;
  t.className = `toast${bad ? ' bad' : ''}`;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
}

const ago = (iso) => {
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  return s < 60 ? `${Math.round(s)} s ago` : s < 3600 ? `${Math.round(s / 60)} min ago` : s < 86400 ? `${(s / 3600).toFixed(1)} h ago` : `${(s / 86400).toFixed(1)} d ago`;
};
const kb = (n) => (n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1048576).toFixed(1)} MB`);

// ---- sign in ------------------------------------------------------------------------
function signOut(message) {
  token = '';
  sessionStorage.removeItem(TOKEN_KEY);
  stopLog();
  $('#app').hidden = true;
  $('#login').hidden = false;
  $('#login-error').textContent = message || '';
  $('#token').value = '';
  $('#token').focus();
}

async function signIn(candidate) {
  token = candidate.trim();
  try {
    const routes = await api('routes');
    sessionStorage.setItem(TOKEN_KEY, token);
    $('#login').hidden = true;
    $('#app').hidden = false;
    $('#probe-route').replaceChildren(...routes.routes.map((r) => el('option', { value: r }, r)));
    if (!routes.routes.length) $('#probe-route').append(el('option', { value: '' }, 'no [relay] or [[route]] configured'));
    await Promise.all([loadQueue(), loadStats()]);
  } catch (e) {
    if (e.status !== 401) $('#login-error').textContent = e.message;
  }
}

// ---- queue --------------------------------------------------------------------------
function queueQuery() {
  const q = new URLSearchParams();
  if ($('#state').value) q.append('state', $('#state').value);
  if ($('#older').value) q.append('older_than', $('#older').value);
  return q.toString();
}

function matchesSearch(e, text) {
  if (!text) return true;
  const t = text.toLowerCase();
  return e.id.toLowerCase().includes(t) || e.from.toLowerCase().includes(t) || e.recipients.some((r) => r.address.toLowerCase().includes(t));
}

async function loadQueue() {
  try {
    entries = await api(`queue?${queueQuery()}`);
  } catch (e) { $('#queue-status').textContent = `Could not read the queue: ${e.message}`; return; }
  renderQueue();
}

function badge(state, held) { return el('span', { class: `badge ${held ? 'held' : state}` }, held ? 'held' : state); }

function renderQueue() {
  const text = $('#search').value.trim();
  const shown = entries.filter((e) => matchesSearch(e, text));
  const selected = new Set($$('#queue-rows input:checked').map((c) => c.value));
  $('#queue-rows').replaceChildren(...shown.map((e) => {
    const last = e.recipients.map((r) => r.last_reply).filter(Boolean).at(-1) || '';
    const row = el('tr', { 'data-id': e.id, class: e.held ? 'is-held' : '' },
      el('td', {}, el('input', { type: 'checkbox', value: e.id, 'aria-label': `Select ${e.id}`, onclick: (ev) => ev.stopPropagation(), onchange: countSelected })),
      el('td', { class: 'mono' }, e.id),
      el('td', {}, e.from || '<>'),
      el('td', {}, e.recipients.map((r) => el('div', { class: 'rcpt' }, badge(r.state, e.held), ' ', r.address))),
      el('td', { class: 'num' }, kb(e.size)),
      el('td', { title: e.arrived }, ago(e.arrived)),
      el('td', { class: 'reply' }, last));
    row.addEventListener('click', () => showMessage(e.id));
    if (selected.has(e.id)) row.querySelector('input').checked = true;
    return row;
  }));
  $('#queue-status').textContent = shown.length === entries.length ? `${entries.length} message${entries.length === 1 ? '' : 's'}` : `${shown.length} of ${entries.length} messages match “${text}”`;
  if (!shown.length) $('#queue-rows').append(el('tr', {}, el('td', { colspan: 7, class: 'empty' }, entries.length ? 'Nothing matches.' : 'The queue is empty.')));
  countSelected();
}

function countSelected() {
  const n = $$('#queue-rows input:checked').length;
  $('#selected-count').textContent = n ? `${n} selected` : '';
  for (const b of $$('[data-bulk]')) b.disabled = n === 0;
}

async function act(op, ids) {
  if (op === 'delete' && !confirm(`Delete ${ids.length === 1 ? ids[0] : `${ids.length} messages`}? No bounce is sent.`)) return;
  let done = 0;
  const failures = [];
  for (const id of ids) {
    try {
      await api(op === 'delete' ? `queue/${id}` : `queue/${id}/${op}`, { method: op === 'delete' ? 'DELETE' : 'POST' });
      done++;
    } catch (e) { failures.push(`${id}: ${e.message}`); }
  }
  const verb = { hold: 'held', release: 'released', flush: 'retried', delete: 'deleted' }[op];
  toast(failures.length ? `${done} ${verb}; ${failures.join('; ')}` : `${done} message${done === 1 ? '' : 's'} ${verb}`, failures.length > 0);
  await loadQueue();
  if (current && ids.includes(current)) { if (op === 'delete') closeMessage(); else await showMessage(current); }
  await loadStats();
}

async function showMessage(id) {
  let m;
  try { m = await api(`queue/${id}`); } catch (e) { toast(e.message, true); if (e.status === 404) { closeMessage(); loadQueue(); } return; }
  current = id;
  $('#message').hidden = false;
  $('#message-title').textContent = `Message ${m.id}${m.held ? ' (held)' : ''}`;
  const facts = [['From', m.from || '<>'], ['Size', kb(m.size)], ['Arrived', `${m.arrived} (${ago(m.arrived)})`],
    ['Client', `${m.client.hostname} [${m.client.address}]${m.client.authUser ? `, as ${m.client.authUser}` : ''}, ${m.client.protocol}`]];
  $('#message-facts').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  $('#message-rcpts').replaceChildren(...m.recipients.map((r) => el('tr', {},
    el('td', {}, r.address), el('td', {}, badge(r.state, m.held)), el('td', { class: 'num' }, r.attempts),
    el('td', {}, r.next_attempt ? ago(r.next_attempt).replace(' ago', '') : '—'), el('td', { class: 'reply' }, r.last_reply || '—'))));
  $('#message-headers').textContent = m.headers;
  $('#message-preview').textContent = m.preview + (m.truncated ? '\n…' : '');
}

function closeMessage() { current = null; $('#message').hidden = true; }

async function download() {
  if (!current) return;
  const res = await fetch(`/api/v1/queue/${current}/raw`, { headers: { Authorization: `Bearer ${token}` } });
  if (!res.ok) { toast(`Download failed: HTTP ${res.status}`, true); return; }
  const url = URL.createObjectURL(await res.blob());
  const a = el('a', { href: url, download: `${current}.eml` });
  document.body.append(a);
  a.click();
  a.remove();
  URL.revokeObjectURL(url);
}

// ---- charts -------------------------------------------------------------------------
function bars(svg, series, colors) {
  const n = 60;
  const w = 300 / n;
  const max = Math.max(1, ...series[0].map((_, i) => series.reduce((s, col) => s + (col[i] || 0), 0)));
  const rects = [];
  for (let i = 0; i < n; i++) {
    let y = 60;
    series.forEach((col, k) => {
      const v = col[i] || 0;
      if (!v) return;
      const h = (v / max) * 56;
      y -= h;
      rects.push(`<rect x="${(i * w).toFixed(2)}" y="${y.toFixed(2)}" width="${(w - 0.6).toFixed(2)}" height="${h.toFixed(2)}" fill="${colors[k]}"></rect>`);
    });
  }
  svg.innerHTML = rects.join('');
}

async function loadStats() {
  let s;
  try { s = await api('stats'); } catch { return; }
  const minutes = s.minutes;
  const pad = (key) => { const v = minutes.map((m) => m[key] ?? 0); return [...Array(Math.max(0, 60 - v.length)).fill(0), ...v]; };
  const sum = (key) => minutes.reduce((a, m) => a + m[key], 0);
  $('#stat-delivered').textContent = sum('delivered');
  $('#stat-deferred').textContent = sum('deferred');
  $('#stat-bounced').textContent = sum('bounced');
  $('#stat-queue').textContent = minutes.at(-1)?.queue ?? entries.length;
  bars($('#chart-deliveries'), [pad('delivered'), pad('deferred'), pad('bounced')], ['#2f9e6e', '#d99a1e', '#c94a4a']);
  bars($('#chart-queue'), [pad('queue')], ['#4a7bd0']);
}

// ---- live log (server-sent events read with fetch, so the token stays in a header) ----
let logAbort = null;
let paused = false;
const logLines = [];

function formatLog(e) {
  const t = e.time.slice(11, 19);
  return `${t} ${e.program}${e.queue_id ? ` ${e.queue_id}:` : ':'} ${e.message}`;
}

function renderLog() {
  const f = $('#log-filter').value.toLowerCase();
  $('#log-lines').textContent = logLines.filter((l) => !f || l.toLowerCase().includes(f)).join('\n');
  $('#log-lines').scrollTop = $('#log-lines').scrollHeight;
}

async function startLog() {
  if (logAbort) return;
  logAbort = new AbortController();
  $('#log-state').textContent = 'connecting…';
  try {
    const res = await fetch('/api/v1/events', { headers: { Authorization: `Bearer ${token}` }, signal: logAbort.signal });
    // the server subscribes before it answers: from here on no event is missed
    $('#log-state').textContent = 'connected, waiting for events…';
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let end;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
        if (!data) continue;
        const event = JSON.parse(data);
        logLines.push(formatLog(event));
        if (logLines.length > 1000) logLines.shift();
        $('#log-state').textContent = `${logLines.length} lines`;
        if (event.event === 'delivery' || event.event === 'queued' || event.event === 'removed') scheduleRefresh();
        if (!paused) renderLog();
      }
    }
  } catch (e) {
    if (e.name !== 'AbortError') $('#log-state').textContent = `disconnected: ${e.message}`;
  } finally { logAbort = null; }
}

function stopLog() { if (logAbort) logAbort.abort(); logAbort = null; }

let refreshTimer = null;
function scheduleRefresh() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => { refreshTimer = null; loadQueue(); loadStats(); }, 1000);
}

// ---- upstream check and configuration check ---------------------------------------
async function runProbe(ev) {
  ev.preventDefault();
  const route = $('#probe-route').value;
  $('#probe-state').textContent = `checking ${route}…`;
  $('#probe-steps').replaceChildren();
  let r;
  try { r = await api('probe', { method: 'POST', body: JSON.stringify(route ? { route } : {}) }); } catch (e) { $('#probe-state').textContent = e.message; return; }
  const targets = r.targets || [r];
  $('#probe-state').textContent = r.ok ? `✓ ${route}: every step passed` : `✗ ${route}: a step failed`;
  $('#probe-steps').replaceChildren(...targets.flatMap((t) => [
    ...(targets.length > 1 ? [el('li', { class: 'target' }, `${t.role || ''} ${t.target}`)] : []),
    ...t.steps.map((s) => el('li', { class: `step ${s.skipped ? 'skipped' : s.ok ? 'pass' : 'fail'}` },
      el('span', { class: 'mark' }, s.skipped ? '·' : s.ok ? '✓' : '✗'),
      el('div', {}, el('strong', {}, s.step), ' ', s.detail,
        s.reply ? el('pre', { class: 'reply' }, s.reply) : '',
        s.diagnosis ? el('p', { class: 'diagnosis' }, s.diagnosis) : '',
        s.fix ? el('p', { class: 'fix' }, 'Fix: ', s.fix) : ''))),
  ]));
}

async function runCheck() {
  $('#check-state').textContent = 'checking…';
  let r;
  try { r = await api('check'); } catch (e) { $('#check-state').textContent = e.message; return; }
  const errors = r.findings.filter((f) => f.level === 'error').length;
  const warnings = r.findings.filter((f) => f.level === 'warning').length;
  $('#check-state').textContent = `${r.source}: ${errors ? `${errors} error${errors === 1 ? '' : 's'}` : 'OK'}${warnings ? `, ${warnings} warning${warnings === 1 ? '' : 's'}` : ''}`;
  $('#check-findings').replaceChildren(...(r.findings.length ? r.findings.map((f) => el('li', { class: f.level },
    el('strong', {}, f.level), ' ', f.message, el('p', { class: 'fix' }, 'Fix: ', f.fix))) : [el('li', { class: 'ok' }, '✓ No problems found.')]));
}

// ---- suppression list ---------------------------------------------------------------
async function loadSuppressions() {
  let list;
  try { list = await api('suppressions'); } catch (e) { toast(e.message, true); return; }
  $('#suppression-rows').replaceChildren(...(list.length ? list.map((s) => el('tr', { 'data-address': s.address },
    el('td', {}, s.address), el('td', {}, s.dsn), el('td', { title: s.since }, ago(s.since)), el('td', {}, s.expires.slice(0, 10)),
    el('td', { class: 'reply' }, s.reply),
    el('td', {}, el('button', { onclick: () => unsuppress(s.address) }, 'Remove')))) : [el('tr', {}, el('td', { colspan: 6, class: 'empty' }, 'Nobody is suppressed.'))]));
}

async function unsuppress(address) {
  try { await api(`suppressions/${encodeURIComponent(address)}`, { method: 'DELETE' }); toast(`${address} removed: mail to it is delivered again`); } catch (e) { toast(e.message, true); }
  await loadSuppressions();
}

// ---- wiring -------------------------------------------------------------------------
function showTab(name) {
  for (const b of $$('.tab')) b.classList.toggle('active', b.dataset.tab === name);
  for (const p of $$('.panel')) p.hidden = p.id !== `tab-${name}`;
  if (name === 'log') startLog();
  if (name === 'suppressions') loadSuppressions();
}

document.addEventListener('DOMContentLoaded', () => {
  $('#login-form').addEventListener('submit', (ev) => { ev.preventDefault(); signIn($('#token').value); });
  $('#logout').addEventListener('click', () => signOut('Signed out.'));
  for (const b of $$('.tab')) b.addEventListener('click', () => showTab(b.dataset.tab));
  $('#filters').addEventListener('submit', (ev) => { ev.preventDefault(); loadQueue(); loadStats(); });
  $('#state').addEventListener('change', loadQueue);
  $('#older').addEventListener('change', loadQueue);
  $('#search').addEventListener('input', renderQueue);
  $('#select-all').addEventListener('change', (ev) => { for (const c of $$('#queue-rows input[type=checkbox]')) c.checked = ev.target.checked; countSelected(); });
  for (const b of $$('[data-bulk]')) b.addEventListener('click', () => act(b.dataset.bulk, $$('#queue-rows input:checked').map((c) => c.value)));
  for (const b of $$('[data-one]')) b.addEventListener('click', () => current && act(b.dataset.one, [current]));
  $('#flush-all').addEventListener('click', async () => { try { const r = await api('queue/flush', { method: 'POST' }); toast(`${r.done.length} message(s) retried now`); loadQueue(); } catch (e) { toast(e.message, true); } });
  $('#message-close').addEventListener('click', closeMessage);
  $('#download').addEventListener('click', download);
  $('#log-filter').addEventListener('input', renderLog);
  $('#log-pause').addEventListener('click', () => { paused = !paused; $('#log-pause').textContent = paused ? 'Resume' : 'Pause'; if (!paused) renderLog(); });
  $('#log-clear').addEventListener('click', () => { logLines.length = 0; renderLog(); });
  $('#probe-form').addEventListener('submit', runProbe);
  $('#check-run').addEventListener('click', runCheck);
  setInterval(() => { if (token && !$('#app').hidden) loadStats(); }, 30000);
  if (token) signIn(token); else signOut('');
});
