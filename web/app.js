// setforge's page: templates, generate (with the daemon's own preview),
// runs that fill in live, albums with a viewer and the zip download.
//
// Plain modern JavaScript, no framework and no build step (docs/web.md):
// the daemon serves this file as it is, compiled into its binary. Every
// element is built with h() from text, never from HTML strings, so nothing
// a template, a prompt or an error says can become markup. The page lives
// in the URL's hash (#/runs/7), so every view can be linked and reloaded,
// and the daemon serves only "/".
//
// The admin token is typed once, kept in sessionStorage (this tab only,
// gone when it closes) and sent as "Authorization: Bearer" by fetch; never
// in a URL. EventSource cannot send that header, so with a token the run
// streams are read with fetch instead (readStream), which also reaches the
// private runs only an admin may watch (docs/visibility.md).

const TOKEN_KEY = 'setforge.token';
const FINAL = new Set(['completed', 'failed', 'canceled']);
const $ = (sel) => document.querySelector(sel);
let token = sessionStorage.getItem(TOKEN_KEY) || '';
let isAdmin = false;

// ---- small helpers -------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// replaceChildren without the null and false that conditional children leave
function fill(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function flash(text, kind = 'info') {
  const f = $('#flash');
  f.className = 'flash ' + kind;
  f.textContent = text;
  if (kind !== 'error') setTimeout(() => { if (f.textContent === text) f.textContent = ''; }, 5000);
}

class ApiError extends Error {
  constructor(status, doc) {
    super((doc && doc.error) || `HTTP ${status}`);
    this.status = status;
    this.code = doc && doc.code;
    this.fields = (doc && doc.fields) || {};
  }
}

// One JSON call to the daemon, with the token when there is one.
async function api(method, path, body) {
  const headers = {};
  if (token) headers.Authorization = 'Bearer ' + token;
  const opt = { method, headers };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    opt.body = JSON.stringify(body);
  }
  const r = await fetch(path, opt);
  const text = await r.text();
  let doc = null;
  try { doc = text ? JSON.parse(text) : null; } catch { doc = null; }
  if (!r.ok) throw new ApiError(r.status, doc);
  return doc;
}

function size(o) { return `${o.width}×${o.height}`; }

function fmtSeconds(s) {
  if (s === null || s === undefined) return '';
  if (s < 60) return `${Math.ceil(s)} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${Math.round(s % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

function progressBar(label) {
  const fill = h('div', { class: 'bar-fill' });
  const bar = h('div', { class: 'bar', role: 'progressbar', 'aria-label': label,
    'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': 0 }, fill);
  bar.status = (st) => { bar.dataset.status = st; };
  bar.set = (p) => {
    const pct = Math.max(0, Math.min(100, Math.round(p * 100)));
    fill.style.width = pct + '%';
    bar.setAttribute('aria-valuenow', pct);
    bar.setAttribute('aria-valuetext', pct + '%');
  };
  return bar;
}

function statusChip(status) {
  return h('span', { class: 'chip st-' + status, text: status });
}

// A field with its label, the input, and the place for the API's message.
function field(label, input, hint) {
  const id = input.id || (input.id = 'f-' + Math.random().toString(36).slice(2));
  const err = h('p', { class: 'field-error', id: id + '-error', 'aria-live': 'polite' });
  input.setAttribute('aria-describedby', err.id);
  const wrap = h('div', { class: 'field', 'data-field': input.name },
    h('label', { for: id, text: label }), input, hint ? h('p', { class: 'hint', text: hint }) : null, err);
  return wrap;
}

// Writes the API's 400 "fields" next to the inputs of form; what names no
// input goes to the form's general error line.
function showFieldErrors(form, e) {
  for (const el of form.querySelectorAll('.field-error')) el.textContent = '';
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  const general = form.querySelector('.form-error');
  const rest = [];
  for (const [k, msg] of Object.entries((e && e.fields) || {})) {
    const wrap = form.querySelector(`.field[data-field="${CSS.escape(k)}"]`);
    if (wrap) {
      wrap.querySelector('.field-error').textContent = `${k} ${msg}`;
      const input = wrap.querySelector('input, textarea, select');
      if (input) input.setAttribute('aria-invalid', 'true');
    } else rest.push(`${k} ${msg}`);
  }
  if (general) general.textContent = e ? (rest.length ? rest.join('; ') : (Object.keys(e.fields || {}).length ? '' : e.message)) : '';
}

// An image. A private album's images are 404s to a request without the
// token, and <img> cannot send it: when one fails to load and the page
// holds a token, it is fetched with the token and shown from a blob: URL
// (kept per address until the view is left). Public images load as usual,
// cached by the browser.
const blobs = new Map(); // image address -> blob: URL
function authImage(img, src) {
  img.src = blobs.get(src) || src;
  img.onerror = async () => {
    img.onerror = null;
    if (!token || blobs.has(src)) return;
    try {
      const r = await fetch(src, { headers: { Authorization: 'Bearer ' + token } });
      if (!r.ok) return;
      blobs.set(src, URL.createObjectURL(await r.blob()));
      if (img.dataset.src === src) img.src = blobs.get(src);
    } catch { /* stays broken: its alt text says what it was */ }
  };
  img.dataset.src = src;
  return img;
}
function image(src, attrs) { return authImage(h('img', attrs), src); }
function dropBlobs() {
  for (const url of blobs.values()) URL.revokeObjectURL(url);
  blobs.clear();
}

// ---- the token -------------------------------------------------------------

// Admin or not, without an admin-only GET to ask: canceling a run that
// cannot exist (the largest id a path may carry) changes nothing and is
// answered after the token check: 404 for an admin token, 403 for another,
// 401 for an unknown one.
const NO_RUN = '999999999999999999';
// isAdmin changes only once the answer is in: a view drawn meanwhile (the first
// one, drawn at once for a kept token) must not see a false "read-only".
async function checkToken() {
  let admin = false;
  if (token) {
    try {
      await api('POST', `/api/runs/${NO_RUN}/cancel`);
    } catch (e) {
      if (e.status === 404) admin = true;
      else if (e.status === 401) {
        flash('That token was rejected (unknown or revoked); it is forgotten.', 'error');
        setToken('');
      } else if (e.status === 403) flash('That token is not an admin token: the page stays read-only.', 'error');
    }
  }
  isAdmin = admin;
  showMode();
}

function setToken(t) {
  token = t;
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function showMode() {
  const mode = $('#mode');
  mode.textContent = isAdmin
    ? 'Admin: this tab holds an admin token (sessionStorage, sent only in the Authorization header).'
    : 'Read-only: enter an admin token above to create templates, cancel and retry runs, and see private albums.';
  mode.className = 'mode ' + (isAdmin ? 'admin' : 'readonly');
  $('#token-input').hidden = !!token;
  $('#token-use').hidden = !!token;
  $('#token-forget').hidden = !token;
}

$('#token-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const v = $('#token-input').value.trim();
  if (!v) return;
  $('#token-input').value = '';
  setToken(v);
  await checkToken();
  if (isAdmin) flash('Admin token accepted.');
  route();
});
$('#token-forget').addEventListener('click', () => {
  setToken('');
  isAdmin = false;
  showMode();
  flash('Token forgotten: the page is read-only.');
  route();
});

// ---- run event streams ---------------------------------------------------------

// Follows /api/runs/<id>/events, calling onEvent(type, data) for "status"
// and "item" events (and "step" events with opts.steps: docs/live.md),
// until the daemon ends the stream after the run's final status (then
// onEnd). Without a token: EventSource, which reconnects with Last-Event-ID
// by itself. With a token: fetch, which can send it (and Last-Event-ID when
// it reconnects). stop() ends it; restart() follows the run again after a
// retry, from the last event seen.
function followRun(runId, onEvent, onEnd, opts = {}) {
  const url = `/api/runs/${runId}/events${opts.steps ? '?steps=1' : ''}`;
  const types = opts.steps ? ['status', 'item', 'step'] : ['status', 'item'];
  let lastId = '';
  let final = false;
  let stopped = false;
  let es = null;
  let ctrl = null;
  let gen = 0; // a restart ends the reader loop of the previous start

  function deliver(type, id, data) {
    // Step events have no id (they are not replayed; EventSource reports the
    // previous event's): only stored events move the resume point.
    if (id && type !== 'step') lastId = id;
    let d;
    try { d = JSON.parse(data); } catch { return; }
    if (type === 'status') final = FINAL.has(d.status);
    onEvent(type, d);
  }

  function viaEventSource() {
    es = new EventSource(url);
    for (const t of types) es.addEventListener(t, (e) => deliver(t, e.lastEventId, e.data));
    es.onerror = () => {
      // The daemon closes a finished run's stream; EventSource would come
      // back every 2 s to hear that again.
      if (final || es.readyState === EventSource.CLOSED) {
        es.close();
        if (!stopped && onEnd) onEnd();
      }
    };
  }

  async function viaFetch(mine) {
    while (!stopped && mine === gen) {
      ctrl = new AbortController();
      const headers = { Authorization: 'Bearer ' + token, Accept: 'text/event-stream' };
      if (lastId) headers['Last-Event-ID'] = lastId;
      try {
        const r = await fetch(url, { headers, signal: ctrl.signal });
        if (!r.ok) {
          if (r.status >= 400 && r.status < 500) { if (onEnd) onEnd(); return; }
        } else {
          const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
          let buf = '';
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buf += value.replace(/\r\n?/g, '\n');
            let i;
            while ((i = buf.indexOf('\n\n')) >= 0) {
              const block = buf.slice(0, i);
              buf = buf.slice(i + 2);
              let type = 'message', id = '', data = [];
              for (const line of block.split('\n')) {
                if (!line || line.startsWith(':')) continue;
                const c = line.indexOf(':');
                const name = c < 0 ? line : line.slice(0, c);
                const val = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
                if (name === 'event') type = val;
                else if (name === 'id') id = val;
                else if (name === 'data') data.push(val);
              }
              if (data.length) deliver(type, id, data.join('\n'));
            }
          }
        }
      } catch {
        if (stopped || mine !== gen) return;
      }
      if (stopped || mine !== gen) return;
      if (final) { if (onEnd) onEnd(); return; }
      await sleep(2000); // the daemon's "retry: 2000"
    }
  }

  function start() {
    final = false;
    gen++;
    if (token) viaFetch(gen); else viaEventSource();
  }
  function stop() {
    stopped = true;
    if (es) es.close();
    if (ctrl) ctrl.abort();
  }
  start();
  return {
    stop,
    restart() { if (es) es.close(); if (ctrl) ctrl.abort(); stopped = false; start(); },
  };
}

// ---- the image viewer ----------------------------------------------------------

// images: [{id, url, prompt, seed, width, height, steps}]; opens at index.
const viewer = { images: [], index: 0 };

function showViewerImage() {
  const img = viewer.images[viewer.index];
  if (!img) return;
  const el = $('#viewer-img');
  authImage(el, img.url);
  el.alt = img.prompt || '';
  $('#viewer-count').textContent = `Image ${viewer.index + 1} of ${viewer.images.length}`;
  $('#viewer-prompt').textContent = img.prompt || '';
  const meta = $('#viewer-meta');
  meta.replaceChildren();
  const rows = [['Seed', img.seed], ['Size', img.width ? size(img) : null], ['Steps', img.steps],
    ['Item', img.item_index], ['Image', img.id]];
  for (const [k, v] of rows) if (v !== null && v !== undefined) meta.append(h('dt', { text: k }), h('dd', { text: String(v) }));
  $('#viewer-prev').disabled = viewer.index === 0;
  $('#viewer-next').disabled = viewer.index >= viewer.images.length - 1;
}

function openViewer(images, index) {
  viewer.images = images;
  viewer.index = index;
  showViewerImage();
  const d = $('#viewer');
  if (!d.open) d.showModal();
  $('#viewer-close').focus();
}

function stepViewer(delta) {
  const n = viewer.index + delta;
  if (n < 0 || n >= viewer.images.length) return;
  viewer.index = n;
  showViewerImage();
}

$('#viewer-prev').addEventListener('click', () => stepViewer(-1));
$('#viewer-next').addEventListener('click', () => stepViewer(1));
$('#viewer-close').addEventListener('click', () => $('#viewer').close());
$('#viewer').addEventListener('keydown', (e) => {
  if (e.key === 'ArrowLeft') { e.preventDefault(); stepViewer(-1); }
  else if (e.key === 'ArrowRight') { e.preventDefault(); stepViewer(1); }
});
$('#viewer').addEventListener('click', (e) => { if (e.target === $('#viewer')) $('#viewer').close(); });

// ---- views -------------------------------------------------------------------------

// A view gets ctx: ctx.alive() is false once the user went elsewhere;
// ctx.onLeave(fn) runs fn then (streams, timers).
let current = null;

async function templatesView(ctx) {
  const doc = await api('GET', '/api/batch-templates?per_page=100');
  if (!ctx.alive()) return;
  const rows = doc.templates.map((t) => h('tr', null,
    h('td', null, h('a', { href: `#/templates/${t.id}`, text: t.name })),
    h('td', { class: 'num', text: t.template_item_count }),
    h('td', { class: 'nowrap', text: size(t) }),
    h('td', { class: 'wrap', text: t.loras.length ? t.loras.map((l) => `${l.name || l.path} (${l.weight})`).join(', ') : '—' }),
    h('td', { class: 'act' }, h('a', { class: 'button small', href: `#/generate/${t.id}`, text: 'Generate' }))));
  const list = doc.templates.length
    ? h('div', { class: 'scroll' }, h('table', { class: 'list' },
      h('caption', { class: 'sr-only', text: 'Batch templates' }),
      h('thead', null, h('tr', null, ['Name', 'Items', 'Size', 'LoRAs'].map((c) => h('th', { scope: 'col', text: c })),
        h('th', { class: 'act' }, h('span', { class: 'sr-only', text: 'Generate' })))),
      h('tbody', null, rows)))
    : h('p', { class: 'muted', text: 'No templates yet.' });
  fill(ctx.view, h('h1', { text: 'Batch templates' }),
    h('p', { class: 'muted', text: `${doc.total} template${doc.total === 1 ? '' : 's'}` }), list,
    isAdmin ? newTemplateForm() : h('p', { class: 'muted', text: 'Creating a template needs an admin token.' }));
}

// The first record's fields and the number of records of CSV text
// (RFC 4180: quotes, doubled quotes, commas and newlines inside quotes).
// Only for showing what the file holds before saving: the daemon parses it
// again (libcsv) and its answer is the one that counts.
function csvPeek(text) {
  text = text.replace(/^\uFEFF/, '');
  const records = [];
  let rec = [], cell = '', q = false, any = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (q) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; }
      else if (c === '"') q = false;
      else cell += c;
    } else if (c === '"') { q = true; any = true; }
    else if (c === ',') { rec.push(cell); cell = ''; any = true; }
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      if (any || cell) { rec.push(cell); records.push(rec); }
      rec = []; cell = ''; any = false;
    } else { cell += c; any = true; }
  }
  if (any || cell) { rec.push(cell); records.push(rec); }
  const header = (records[0] || []).map((s) => s.trim());
  return { header, rows: records.slice(1) };
}

// The {name} placeholders of a prompt template, as the daemon reads them
// ({{ and }} are literal braces; an unclosed { is literal).
function placeholders(tpl) {
  const out = [];
  for (let i = 0; i < tpl.length; i++) {
    if (tpl[i] === '{') {
      if (tpl[i + 1] === '{') { i++; continue; }
      const end = tpl.indexOf('}', i + 1);
      if (end < 0) break;
      out.push(tpl.slice(i + 1, end).trim());
      i = end;
    } else if (tpl[i] === '}' && tpl[i + 1] === '}') i++;
  }
  return [...new Set(out)];
}

function newTemplateForm() {
  let csvText = '';
  let columns = [];
  const name = h('input', { name: 'name', required: true, maxlength: 200 });
  const file = h('input', { type: 'file', name: 'csv', accept: '.csv,text/csv,text/plain', id: 'csv-file' });
  const drop = h('div', { class: 'drop' });
  const dropText = h('p', { text: 'Drop a CSV file here, or choose one:' });
  const csvInfo = h('div', { class: 'csv-info' });
  const prompt = h('textarea', { name: 'prompt_template', rows: 3, required: true,
    placeholder: 'zodiac sign {sign}, {element} element, in the style of {theme}' });
  const check = h('ul', { class: 'check', 'aria-live': 'polite' });
  const width = h('input', { name: 'width', type: 'number', min: 64, max: 2048, step: 8, value: 512 });
  const height = h('input', { name: 'height', type: 'number', min: 64, max: 2048, step: 8, value: 512 });
  const save = h('button', { type: 'submit', text: 'Save template' });
  const csvErr = h('p', { class: 'field-error', id: 'csv-file-error' });
  file.setAttribute('aria-describedby', csvErr.id);

  function showCheck() {
    check.replaceChildren();
    const names = placeholders(prompt.value);
    if (!prompt.value) return;
    if (!names.length) check.append(h('li', { class: 'warn', text: 'No {placeholders}: every item gets the same prompt.' }));
    for (const n of names) {
      const ok = n === 'theme' || columns.includes(n);
      check.append(h('li', { class: ok ? 'ok' : 'bad',
        text: `{${n}} ${n === 'theme' ? '→ the theme given at generate' : ok ? '→ a CSV column' : '→ not a column of the CSV'}` }));
    }
  }

  async function takeFile(f) {
    if (!f) return;
    csvText = await f.text();
    const peek = csvPeek(csvText);
    columns = peek.header;
    const table = h('table', { class: 'list small' },
      h('thead', null, h('tr', null, peek.header.map((c) => h('th', { scope: 'col', text: c })))),
      h('tbody', null, peek.rows.slice(0, 5).map((r) => h('tr', null, r.map((c) => h('td', { text: c }))))));
    fill(csvInfo,
      h('p', { text: `${f.name}: ${peek.rows.length} item${peek.rows.length === 1 ? '' : 's'}, columns ${peek.header.join(', ')}` }),
      h('div', { class: 'scroll' }, table),
      h('p', { class: 'muted', text: peek.rows.length > 5 ? `…and ${peek.rows.length - 5} more` : '' }));
    if (!name.value) name.value = f.name.replace(/\.[^.]*$/, '');
    showCheck();
  }

  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    if (e.dataTransfer.files.length) {
      try { file.files = e.dataTransfer.files; } catch { /* shown in the summary all the same */ }
    }
    takeFile(e.dataTransfer.files[0]);
  });
  file.addEventListener('change', () => takeFile(file.files[0]));
  prompt.addEventListener('input', showCheck);
  drop.append(dropText, file, csvErr, csvInfo);

  const form = h('form', { class: 'card', id: 'new-template', novalidate: true },
    h('h2', { text: 'New template' }),
    field('Name', name),
    h('div', { class: 'field', 'data-field': 'csv' }, h('label', { for: 'csv-file', text: 'Items (CSV, first row = column names)' }), drop),
    field('Prompt template', prompt, 'Use {column} for an item\'s value and {theme} for the theme given at generate.'),
    h('div', { class: 'placeholder-check' }, h('h3', { text: 'Placeholder check' }), check),
    h('div', { class: 'row' }, field('Width', width), field('Height', height)),
    h('p', { class: 'form-error', role: 'alert' }),
    save);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    save.disabled = true;
    const body = { name: name.value, prompt_template: prompt.value,
      width: Number(width.value), height: Number(height.value) };
    if (csvText) body.csv = csvText;
    try {
      const t = await api('POST', '/api/batch-templates', body);
      flash(`Template "${t.name}" saved with ${t.template_item_count} items.`);
      location.hash = `#/templates/${t.id}`;
    } catch (err) {
      showFieldErrors(form, err);
    } finally {
      save.disabled = false;
    }
  });
  return form;
}

async function templateView(ctx, id) {
  const t = await api('GET', `/api/batch-templates/${id}`);
  if (!ctx.alive()) return;
  const cols = t.csv_columns;
  const dl = h('dl', { class: 'meta' });
  for (const [k, v] of [['Prompt template', t.prompt_template], ['Base prompt', t.base_prompt],
    ['Style suffix', t.style_suffix], ['Negative prompt', t.negative_prompt], ['Size', size(t)],
    ['LoRAs', t.loras.map((l) => `${l.name || l.path} (${l.weight})`).join(', ')], ['Created by', t.created_by]]) {
    if (v) dl.append(h('dt', { text: k }), h('dd', { text: v }));
  }
  fill(ctx.view,
    h('h1', { text: t.name }),
    t.description ? h('p', { text: t.description }) : null,
    h('p', null, h('a', { class: 'button', href: `#/generate/${t.id}`, text: 'Generate a set' }), ' ',
      h('a', { href: `/api/batch-templates/${t.id}/items.csv`, text: 'Items as CSV' })),
    dl,
    h('h2', { text: `${t.template_item_count} items` }),
    h('div', { class: 'scroll' }, h('table', { class: 'list', id: 'items' },
      h('thead', null, h('tr', null, h('th', { scope: 'col', text: '#' }), cols.map((c) => h('th', { scope: 'col', text: c })))),
      h('tbody', null, t.csv_items.map((it, i) => h('tr', null, h('td', { class: 'num', text: i }),
        cols.map((c) => h('td', { text: it[c] }))))))));
}

async function generateView(ctx, id) {
  const list = await api('GET', '/api/batch-templates?per_page=100');
  if (!ctx.alive()) return;
  if (!list.templates.length) {
    fill(ctx.view, h('h1', { text: 'Generate' }), h('p', { text: 'There is no template yet.' }));
    return;
  }
  const tid = Number(id) || list.templates[0].id;
  const select = h('select', { name: 'template', id: 'gen-template' },
    list.templates.map((t) => h('option', { value: t.id, selected: t.id === tid, text: `${t.name} (${t.template_item_count} items)` })));
  select.addEventListener('change', () => { location.hash = `#/generate/${select.value}`; });
  const tpl = list.templates.find((t) => t.id === tid) || list.templates[0];
  const theme = h('input', { name: 'user_theme', id: 'gen-theme', required: true, maxlength: 500,
    value: tpl.example_theme || '' });
  const album = h('input', { name: 'album_name', id: 'gen-album', required: true, maxlength: 200,
    value: `${tpl.name} ${new Date().toISOString().slice(0, 10)}` });
  const steps = h('input', { name: 'steps', id: 'gen-steps', type: 'number', min: 1, max: 150, value: 25 });
  const seed = h('input', { name: 'seed', id: 'gen-seed', type: 'number', min: 0, max: 2147483647, placeholder: 'random' });
  const width = h('input', { name: 'width', id: 'gen-width', type: 'number', min: 64, max: 2048, step: 8, value: tpl.width });
  const height = h('input', { name: 'height', id: 'gen-height', type: 'number', min: 64, max: 2048, step: 8, value: tpl.height });
  const negative = h('textarea', { name: 'negative_prompt', id: 'gen-negative', rows: 2, maxlength: 2000 });
  const go = h('button', { type: 'submit', text: 'Start the run' });
  const preview = h('section', { class: 'preview', 'aria-live': 'polite', 'aria-label': 'Preview' });

  function body() {
    const b = { album_name: album.value, user_theme: theme.value };
    const num = (el) => (el.value === '' ? undefined : Number(el.value));
    for (const [k, el] of [['steps', steps], ['seed', seed], ['width', width], ['height', height]]) {
      const v = num(el);
      if (v !== undefined) b[k] = v;
    }
    if (negative.value) b.negative_prompt = negative.value;
    return b;
  }

  const form = h('form', { class: 'card', id: 'generate', novalidate: true },
    field('Template', select),
    field('Theme', theme, 'The art style every prompt gets ({theme}).'),
    field('Album name', album),
    h('div', { class: 'row' }, field('Steps', steps), field('Seed', seed, 'Empty: drawn at random, item i gets seed + i.')),
    h('div', { class: 'row' }, field('Width', width), field('Height', height)),
    field('Negative prompt', negative, 'Joined with the template\'s: "yours, template\'s".'),
    h('p', { class: 'form-error', role: 'alert' }),
    go);

  let seq = 0;
  let timer = null;
  async function refresh() {
    const mine = ++seq;
    try {
      const p = await api('POST', `/api/batch-templates/${tid}/preview?limit=8`, body());
      if (mine !== seq || !ctx.alive()) return;
      showFieldErrors(form, null);
      fill(preview,
        h('h2', { text: `Preview: the first ${p.items.length} of ${p.total} prompts, as the daemon will build them` }),
        (p.warnings || []).map((w) => h('p', { class: 'warn', role: 'note', text: w })),
        h('ol', { class: 'preview-list', start: 0 }, p.items.map((it) => h('li', null,
          h('p', { class: 'prompt', text: it.prompt }),
          h('p', { class: 'muted', text: `seed ${it.seed === null ? 'random + ' + it.index : it.seed} · ${it.width}×${it.height}${it.negative_prompt ? ' · negative: ' + it.negative_prompt : ''}` })))));
    } catch (err) {
      if (mine !== seq || !ctx.alive()) return;
      showFieldErrors(form, err);
      fill(preview, h('p', { class: 'muted', text: 'Fix the marked fields to see the preview.' }));
    }
  }
  form.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(refresh, 250); });
  ctx.onLeave(() => clearTimeout(timer));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    go.disabled = true;
    try {
      const r = await api('POST', `/api/batch-templates/${tid}/generate`, body());
      flash(`Run ${r.run.id} queued: ${r.run.total_items} items.`);
      location.hash = `#/runs/${r.run.id}`;
    } catch (err) {
      showFieldErrors(form, err);
    } finally {
      go.disabled = false;
    }
  });
  fill(ctx.view, h('h1', { text: 'Generate a set' }), h('div', { class: 'two' }, form, preview));
  refresh();
}

function runLine(run) {
  const settled = run.completed_items + run.failed_items + run.canceled_items;
  return `${run.completed_items} done, ${run.failed_items} failed, ${run.canceled_items} canceled of ${run.total_items} (${settled}/${run.total_items})`;
}

async function runsView(ctx) {
  const doc = await api('GET', '/api/runs?per_page=50');
  if (!ctx.alive()) return;
  const streams = [];
  ctx.onLeave(() => streams.forEach((s) => s.stop()));
  const items = doc.runs.map((run) => {
    const bar = progressBar(`Run ${run.id} progress`);
    bar.set(run.progress);
    bar.status(run.status);
    const chip = statusChip(run.status);
    const line = h('p', { class: 'muted', text: runLine(run) });
    const li = h('li', { class: 'run-row', 'data-run': run.id },
      h('div', { class: 'run-head' }, h('a', { href: `#/runs/${run.id}`, text: `Run ${run.id}: ${run.album_name}` }), chip),
      bar, line);
    // At most four live streams: a browser opens six connections per host
    // and the page still needs some for its own requests.
    if (!FINAL.has(run.status) && streams.length < 4) {
      streams.push(followRun(run.id, (type, d) => {
        if (d.total_items === undefined || d.completed_items === undefined) return;
        Object.assign(run, d);
        const settled = d.completed_items + d.failed_items + d.canceled_items;
        bar.set(d.total_items ? settled / d.total_items : 1);
        line.textContent = runLine(run);
        if (type === 'status') {
          chip.className = 'chip st-' + d.status;
          chip.textContent = d.status;
          bar.status(d.status);
        }
      }));
    }
    return li;
  });
  fill(ctx.view, h('h1', { text: 'Runs' }),
    doc.runs.length ? h('ul', { class: 'runs' }, items) : h('p', { class: 'muted', text: 'No run yet. Start one from Generate.' }));
  // Runs past the four streamed ones, and new runs, show on the next look.
  const t = setInterval(async () => {
    if (!ctx.alive()) return;
    const again = await api('GET', '/api/runs?per_page=50').catch(() => null);
    if (again && ctx.alive() && (again.runs[0] || {}).id !== (doc.runs[0] || {}).id) route();
  }, 5000);
  ctx.onLeave(() => clearInterval(t));
}

// A run's items are shown 100 at a time (one request for the first view,
// whatever the run's size); events about items not shown yet only move the
// counts.
const ITEMS_PAGE = 100;
const itemsPage = (id, page) => api('GET', `/api/runs/${id}/items?per_page=${ITEMS_PAGE}&page=${page}`);

async function runView(ctx, id) {
  let run = await api('GET', `/api/runs/${id}`);
  const [tpl, first] = await Promise.all([
    api('GET', `/api/batch-templates/${run.template_id}`).catch(() => null),
    itemsPage(id, 1),
  ]);
  if (!ctx.alive()) return;
  const items = first.items;
  let pagesShown = 1;
  const pages = first.pages;
  const keyCol = tpl && tpl.csv_columns[0];
  const keyOf = (i) => (tpl && tpl.csv_items[i] ? tpl.csv_items[i][keyCol] : `item ${i}`);

  const title = h('h1', { text: `Run ${run.id}: ${run.album_name}` });
  const chip = statusChip(run.status);
  const bar = progressBar('Run progress');
  const counts = h('p', { class: 'counts', id: 'run-counts' });
  const eta = h('p', { class: 'muted', id: 'run-eta' });
  const albumLink = h('p');
  const cancel = h('button', { type: 'button', id: 'run-cancel', text: 'Cancel run' });
  const pause = h('button', { type: 'button', id: 'run-pause', text: 'Pause' });
  const resume = h('button', { type: 'button', id: 'run-resume', text: 'Resume' });
  const retry = h('button', { type: 'button', id: 'run-retry', text: 'Retry failed and canceled' });
  const grid = h('ol', { class: 'grid', id: 'run-grid', 'aria-label': 'Items' });
  const tiles = [];
  const lives = new Map(); // item index -> its live part while it is drawn (liveBox)

  function imagesForViewer() {
    return items.filter((it) => it.image_id).map((it) => ({ id: it.image_id, url: `/api/images/${it.image_id}/file`,
      prompt: it.prompt, seed: it.seed, width: run.width, height: run.height, steps: run.steps, item_index: it.index }));
  }

  function paintTile(i) {
    const it = items[i];
    const li = tiles[i];
    // Replayed events repeat what is shown: redrawing would throw away the
    // keyboard focus of whoever is on this tile.
    if (it.status !== 'running') dropLive(i);
    const sig = `${it.status}|${it.image_id}|${it.error}|${lives.has(i)}`;
    if (li.dataset.sig === sig) return;
    li.dataset.sig = sig;
    const hadFocus = li.contains(document.activeElement);
    li.className = 'tile st-' + it.status;
    li.dataset.status = it.status;
    const cap = h('p', { class: 'tile-cap' }, h('span', { class: 'key', text: keyOf(it.index) }),
      it.status === 'succeeded' ? h('span', { class: 'sr-only', text: 'succeeded' }) : statusChip(it.status));
    let body;
    if (it.image_id) {
      body = h('button', { type: 'button', class: 'tile-img', 'aria-label': `Open ${keyOf(it.index)}`,
        onclick: () => { const imgs = imagesForViewer(); openViewer(imgs, imgs.findIndex((x) => x.id === it.image_id)); } },
      image(`/api/images/${it.image_id}/file`, { alt: it.prompt, loading: 'lazy', width: run.width, height: run.height }));
    } else if (it.status === 'failed' || (it.status === 'canceled' && it.error)) {
      body = h('div', { class: 'tile-empty' }, h('p', { class: 'err', text: it.error || 'failed' }));
    } else {
      body = h('div', { class: 'tile-empty' }, h('span', { 'aria-hidden': 'true', text: it.status === 'running' ? 'drawing…' : it.status }));
      const lv = lives.get(i);
      if (lv) body.append(lv.img, lv.box); // kept across redraws: the preview shown stays
    }
    if (!it.image_id) body.style.aspectRatio = `${run.width} / ${run.height}`; // the image's place, kept
    fill(li, body, cap);
    if (hadFocus && body.tagName === 'BUTTON') body.focus();
  }

  // An item being drawn: its sampler step as a thin bar with "step 14/30"
  // and the endpoint, and the server's latest preview behind them, from the
  // stream's step events (docs/live.md). Not an aria-live region: four
  // updates a second per item would drown a screen reader; the bar's aria
  // values are there when someone looks. The final image replaces it all
  // when the item's "item" event comes.
  function liveBox(i) {
    let lv = lives.get(i);
    if (lv) return lv;
    const img = h('img', { class: 'tile-preview', alt: `${items[i].prompt} (preview)`, hidden: true,
      width: run.width, height: run.height });
    const text = h('span', { class: 'step-text' });
    const where = h('span', { class: 'step-where' });
    const barFill = h('div', { class: 'bar-fill' });
    const bar = h('div', { class: 'bar thin', role: 'progressbar', 'aria-label': `${keyOf(i)}: sampler steps`,
      'aria-valuemin': 0, 'aria-valuemax': 1, 'aria-valuenow': 0 }, barFill);
    lv = { img, box: h('div', { class: 'tile-live' }, h('p', null, text, where), bar), src: '', blob: '' };
    img.addEventListener('load', () => { img.hidden = false; });
    // A preview asked for just as its item ended is a 404: no broken image.
    // A private run's previews need the token, which <img> cannot send.
    img.addEventListener('error', async () => {
      img.hidden = true;
      const src = lv.src;
      if (!token || !src || lv.viaToken === src || lives.get(i) !== lv) return;
      lv.viaToken = src;
      try {
        const r = await fetch(src, { headers: { Authorization: 'Bearer ' + token } });
        if (!r.ok || lv.src !== src || lives.get(i) !== lv) return;
        if (lv.blob) URL.revokeObjectURL(lv.blob);
        img.src = lv.blob = URL.createObjectURL(await r.blob());
      } catch { /* stays hidden */ }
    });
    lv.set = (d) => {
      const steps = Math.max(1, d.steps || 1), step = Math.max(0, Math.min(steps, d.step || 0));
      text.textContent = `step ${step}/${steps}`;
      where.textContent = d.endpoint || '';
      barFill.style.width = Math.round((100 * step) / steps) + '%';
      bar.setAttribute('aria-valuemax', steps);
      bar.setAttribute('aria-valuenow', step);
      bar.setAttribute('aria-valuetext', `step ${step} of ${steps}${d.endpoint ? ' on ' + d.endpoint : ''}`);
      if (d.preview && d.preview !== lv.src) img.src = lv.src = d.preview;
    };
    lives.set(i, lv);
    return lv;
  }
  function dropLive(i) {
    const lv = lives.get(i);
    if (!lv) return;
    if (lv.blob) URL.revokeObjectURL(lv.blob);
    lives.delete(i);
  }
  function showStep(d) {
    const it = items[d.index];
    // not shown yet, or a late step of an item that ended
    if (!it || !['queued', 'running'].includes(it.status)) return;
    it.status = 'running'; // items have no event when they start: this is it
    liveBox(d.index).set(d);
    paintTile(d.index);
  }
  ctx.onLeave(() => { for (const i of [...lives.keys()]) dropLive(i); });

  function paintRun() {
    chip.className = 'chip st-' + run.status;
    chip.textContent = run.status;
    const settled = run.completed_items + run.failed_items + run.canceled_items;
    bar.set(run.total_items ? settled / run.total_items : 1);
    bar.status(run.status);
    counts.textContent = runLine(run);
    eta.textContent = FINAL.has(run.status) ? (run.completed_at ? `Finished ${run.completed_at}` : '')
      : run.status === 'paused' ? 'Paused: nothing more is drawn until it is resumed.'
        : run.eta_s !== null && run.eta_s !== undefined ? `About ${fmtSeconds(run.eta_s)} left` : 'Estimating time left…';
    // Until the run has an album (public until an admin hides it), its zip
    // holds what is done so far; then the album's page has the download.
    fill(albumLink, run.album_id ? h('a', { href: `#/albums/${run.album_id}`, text: 'Open the album →' })
      : h('a', { href: `/api/runs/${run.id}/download.zip`, download: `run-${run.id}.zip`, id: 'run-download',
        text: FINAL.has(run.status) ? 'Download (zip)' : 'Download what is done so far (zip)' }));
    cancel.hidden = !isAdmin || FINAL.has(run.status);
    pause.hidden = !isAdmin || !['queued', 'running'].includes(run.status);
    resume.hidden = !isAdmin || run.status !== 'paused';
    retry.hidden = !isAdmin || !FINAL.has(run.status) || run.failed_items + run.canceled_items === 0;
  }

  function addTiles(from) {
    const added = [];
    for (let i = from; i < items.length; i++) {
      tiles.push(h('li', { class: 'tile' }));
      paintTile(i);
      added.push(tiles[i]);
    }
    grid.append(...added);
  }
  const more = h('button', { type: 'button', id: 'run-more' });
  function paintMore() {
    more.hidden = pagesShown >= pages;
    more.textContent = `Show ${Math.min(ITEMS_PAGE, run.total_items - items.length)} more items (${run.total_items - items.length} not shown)`;
  }
  more.addEventListener('click', async () => {
    more.disabled = true;
    try {
      const next = await itemsPage(id, pagesShown + 1);
      pagesShown++;
      const from = items.length;
      items.push(...next.items);
      addTiles(from);
      paintMore();
    } catch (e) { flash(e.message, 'error'); }
    more.disabled = false;
  });
  addTiles(0);
  paintMore();
  // One GET of the run at a time; a call during one asks for another after
  // it, so the last answer shown is never older than the last event.
  let refetching = false, again = false;
  async function refetchRun() {
    if (refetching) { again = true; return; }
    refetching = true;
    do {
      again = false;
      try { run = await api('GET', `/api/runs/${id}`); if (ctx.alive()) paintRun(); } catch { /* the stream goes on */ }
    } while (again && ctx.alive());
    refetching = false;
  }
  const stream = followRun(id, (type, d) => {
    if (type === 'step') { showStep(d); return; }
    if (type === 'item' && items[d.index]) {
      Object.assign(items[d.index], { status: d.status, image_id: d.image_id, error: d.error, attempts: d.attempts });
      paintTile(d.index);
    }
    for (const k of ['status', 'completed_items', 'failed_items', 'canceled_items', 'total_items', 'album_id', 'eta_s'])
      if (d[k] !== undefined && (k !== 'status' || type === 'status')) run[k] = d[k];
    paintRun();
    // events carry the counts and the ETA; a status change, or an event of
    // a daemon too old to send eta_s, reads the whole run again
    if (type === 'status' || d.eta_s === undefined) refetchRun();
  }, () => refetchRun(), { steps: true });
  ctx.onLeave(() => stream.stop());

  cancel.addEventListener('click', async () => {
    cancel.disabled = true;
    try { const r = await api('POST', `/api/runs/${id}/cancel`); run = r.run; paintRun(); flash(r.message); }
    catch (e) { flash(e.message, 'error'); }
    cancel.disabled = false;
  });
  for (const [button, verb] of [[pause, 'pause'], [resume, 'resume']]) {
    button.addEventListener('click', async () => {
      button.disabled = true;
      try { const r = await api('POST', `/api/runs/${id}/${verb}`); run = r.run; paintRun(); flash(r.message); }
      catch (e) { flash(e.message, 'error'); }
      button.disabled = false;
    });
  }
  retry.addEventListener('click', async () => {
    retry.disabled = true;
    try {
      const r = await api('POST', `/api/runs/${id}/retry`);
      run = r.run;
      for (let p = 1; p <= pagesShown; p++) {
        const fresh = await itemsPage(id, p);
        fresh.items.forEach((it, k) => { const i = (p - 1) * ITEMS_PAGE + k; items[i] = it; paintTile(i); });
      }
      paintRun();
      stream.restart();
      flash(r.message);
    } catch (e) { flash(e.message, 'error'); }
    retry.disabled = false;
  });

  paintRun();
  fill(ctx.view, title,
    h('div', { class: 'run-head' }, chip, h('span', { class: 'muted', text: `theme: ${run.user_theme} · seed ${run.seed} · ${size(run)} · ${run.steps} steps` })),
    bar, counts, eta, albumLink,
    h('div', { class: 'actions' }, pause, resume, cancel, retry),
    grid, more);
}

async function albumsView(ctx) {
  const doc = await api('GET', '/api/albums?per_page=100');
  if (!ctx.alive()) return;
  fill(ctx.view, h('h1', { text: 'Albums' }),
    doc.albums.length ? h('ul', { class: 'albums' }, doc.albums.map((a) => h('li', { class: 'album-card' },
      h('a', { href: `#/albums/${a.id}` },
        a.preview_images[0] ? image(a.preview_images[0].url, { alt: `First image of ${a.name}`, loading: 'lazy' })
          : h('div', { class: 'tile-empty', text: 'empty' }),
        h('span', { class: 'album-name', text: a.name })),
      h('p', { class: 'muted', text: `${a.image_count} image${a.image_count === 1 ? '' : 's'}${a.is_public ? '' : ' · private'} · ${a.source_type}` }))))
      : h('p', { class: 'muted', text: 'No album yet: a run that finishes files its images in one.' }));
}

// The zip: a plain link for a public album. A private one needs the admin
// token, which a link cannot carry: fetch it and save the blob.
function downloadButton(album) {
  const href = `/api/albums/${album.id}/download.zip`;
  const a = h('a', { class: 'button', id: 'album-download', href, download: `${album.name}.zip`, text: 'Download all (zip)' });
  if (!album.is_public && token) {
    a.addEventListener('click', async (e) => {
      e.preventDefault();
      try {
        const r = await fetch(href, { headers: { Authorization: 'Bearer ' + token } });
        if (!r.ok) throw new Error(`download failed: HTTP ${r.status}`);
        const url = URL.createObjectURL(await r.blob());
        const tmp = h('a', { href: url, download: `${album.name}.zip` });
        document.body.append(tmp);
        tmp.click();
        tmp.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60000);
      } catch (err) { flash(err.message, 'error'); }
    });
  }
  return a;
}

async function albumView(ctx, id) {
  let doc = await api('GET', `/api/albums/${id}?per_page=100`);
  if (!ctx.alive()) return;
  const images = doc.images.slice();
  const grid = h('ol', { class: 'grid', id: 'album-grid', 'aria-label': 'Images' });
  const more = h('button', { type: 'button', text: 'Show more' });
  function add(list, from) {
    list.forEach((img, k) => grid.append(h('li', { class: 'tile st-succeeded' },
      h('button', { type: 'button', class: 'tile-img', 'aria-label': `Open image ${from + k + 1}`,
        onclick: () => openViewer(images, from + k) },
      image(img.url, { alt: img.prompt, loading: 'lazy', width: img.width, height: img.height })),
      h('p', { class: 'tile-cap' }, h('span', { class: 'muted', text: `seed ${img.seed}` })))));
  }
  add(doc.images, 0);
  more.hidden = doc.page >= doc.pages;
  more.addEventListener('click', async () => {
    doc = await api('GET', `/api/albums/${id}?per_page=100&page=${doc.page + 1}`);
    const from = images.length;
    images.push(...doc.images);
    add(doc.images, from);
    more.hidden = doc.page >= doc.pages;
  });
  fill(ctx.view, h('h1', { text: doc.name }),
    doc.description ? h('p', { text: doc.description }) : null,
    h('p', { class: 'muted', text: `${doc.image_count} images · ${doc.is_public ? 'public' : 'private'} · ${doc.source_type}${doc.source_type === 'batch_generation' ? ` (run ${doc.source_id})` : ''}` }),
    grid, more,
    h('div', { class: 'actions' }, downloadButton(doc),
      doc.source_type === 'batch_generation' ? h('a', { href: `#/runs/${doc.source_id}`, text: 'The run' }) : null));
}

// ---- the router -----------------------------------------------------------------

const ROUTES = [
  [/^#\/templates\/(\d+)$/, templateView, 'templates'],
  [/^#\/templates$/, templatesView, 'templates'],
  [/^#\/generate(?:\/(\d+))?$/, generateView, 'generate'],
  [/^#\/runs\/(\d+)$/, runView, 'runs'],
  [/^#\/runs$/, runsView, 'runs'],
  [/^#\/albums\/(\d+)$/, albumView, 'albums'],
  [/^#\/albums$/, albumsView, 'albums'],
];

async function route() {
  if (current) current.leave();
  if ($('#viewer').open) $('#viewer').close();
  dropBlobs();
  const hash = location.hash || '#/templates';
  let match = null, view = null, section = '';
  for (const [re, fn, sec] of ROUTES) {
    match = hash.match(re);
    if (match) { view = fn; section = sec; break; }
  }
  const leaving = [];
  let alive = true;
  const ctx = {
    view: $('#view'),
    alive: () => alive,
    onLeave: (fn) => leaving.push(fn),
    leave: () => { alive = false; leaving.forEach((fn) => fn()); },
  };
  current = ctx;
  for (const a of document.querySelectorAll('nav a')) {
    if (a.dataset.section === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = `setforge · ${section || 'not found'}`;
  if (!view) {
    fill(ctx.view, h('h1', { text: 'Not found' }), h('p', null, h('a', { href: '#/templates', text: 'Back to the templates' })));
    return;
  }
  try {
    await view(ctx, ...match.slice(1));
  } catch (e) {
    if (!ctx.alive()) return;
    fill(ctx.view, h('h1', { text: e.status === 404 ? 'Not found' : 'Something went wrong' }),
      h('p', { class: 'err', text: e.message }),
      e.status === 404 && !isAdmin ? h('p', { class: 'muted', text: 'It may be private: private albums and their runs need an admin token.' }) : null);
  }
}

window.addEventListener('hashchange', () => { route().then(() => $('#view').focus({ preventScroll: true })); });
// A token kept from before is taken for an admin's so that the first view
// is drawn at once; it is drawn again only when the check says otherwise
// (a second drawing while the user already works in the first would undo
// what they typed).
const assumed = isAdmin = !!token;
showMode();
route();
checkToken().then(() => { if (isAdmin !== assumed) route(); });
