// Browser test of the page the daemon serves, in headless Chromium (Debian's
// /usr/bin/chromium driven by playwright-core: no browser download).
//
//   node tests/browser/web.test.mjs <base-url> <admin-token> <artifacts-dir>
//
// tests/blackbox/test_web_browser.py starts the daemon (examples on, the
// procedural backend drawing slowly enough to watch) and runs this. Every
// step prints "ok <step>" or "FAIL <step>: why", and the last line is
// "RESULT web.test.mjs passed=N failed=N pending=N"; a step that needs a
// route this build does not have yet (the album zip, from another branch)
// prints "PENDING <step>: why" and counts neither way. Screenshots go to the artifacts
// directory (tests/artifacts/, ignored by git). Waits are on conditions,
// never on the clock; their bounds are scaled by SF_SLOW.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [base, token, artifacts = 'tests/artifacts'] = process.argv.slice(2);
if (!base || !token) {
  console.error('usage: web.test.mjs <base-url> <admin-token> [artifacts-dir]');
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });
const SLOW = process.env.SF_SLOW ? 4 : 1;
const T = (ms) => ms * SLOW;
let passed = 0, failed = 0, pending = 0;
const state = {};

async function step(name, fn) {
  try {
    await fn();
    console.log(`ok ${name}`);
    passed++;
  } catch (e) {
    if (e && /^PENDING/.test(e.message)) {
      // a step whose route is not in this build yet: said, not counted
      console.log(`PENDING ${name}: ${e.message}`);
      pending++;
      return;
    }
    console.log(`FAIL ${name}: ${(e && e.stack) || e}`.split('\n').slice(0, 6).join('\n    '));
    failed++;
    // what the page showed then, for whoever reads the failure
    const file = join(artifacts, `FAILED-${failed}.png`);
    await page.screenshot({ path: file, fullPage: true }).catch(() => {});
    console.log(`    (screenshot of the page: ${file}; flash: ${await page.textContent('#flash').catch(() => '?')})`);
  }
}
function check(cond, msg) { if (!cond) throw new Error(msg); }

async function api(method, path, body) {
  const headers = { Authorization: 'Bearer ' + token };
  if (body) headers['Content-Type'] = 'application/json';
  const r = await fetch(base + path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const text = await r.text();
  return { status: r.status, doc: text ? JSON.parse(text) : null, headers: r.headers };
}

// Console errors and uncaught exceptions of a page fail the step that
// checks them. The browser logs every 4xx answer to fetch as an error
// ("Failed to load resource"), and the page meets some on purpose (the
// token check, a preview of a half-filled form): those are not the page's.
function watch(page) {
  const errors = [];
  page.on('pageerror', (e) => errors.push('pageerror: ' + e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) errors.push('console: ' + m.text());
  });
  return errors;
}

async function login(page) {
  await page.fill('#token-input', token);
  await page.click('#token-use');
  await page.waitForSelector('.mode.admin', { timeout: T(10000) });
}

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
const desktop = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
const page = await desktop.newPage();
const errors = watch(page);
// A screenshot of what the page shows, which must not show a program's
// leftovers ("null", "undefined", "NaN" where a value was missing).
async function shot(p, name) {
  await p.screenshot({ path: join(artifacts, name), fullPage: true, animations: 'disabled' });
  const text = await p.evaluate(() => document.querySelector('#view').innerText);
  const junk = text.match(/\b(null|undefined|NaN|\[object Object\])\b/);
  check(!junk, `${name}: the page shows "${junk && junk[0]}"`);
}

await step('the page opens read-only and says so', async () => {
  const r = await page.goto(base + '/');
  check(r.status() === 200, 'status ' + r.status());
  check((r.headers()['content-security-policy'] || '').includes("default-src 'self'"), 'no CSP header');
  await page.waitForSelector('table.list');
  const mode = await page.textContent('#mode');
  check(/Read-only/.test(mode), 'mode says: ' + mode);
  check(await page.locator('#new-template').count() === 0, 'the create form is shown without a token');
});

await step('the token is typed once, kept in sessionStorage, never in a URL', async () => {
  const urls = [];
  page.on('request', (req) => urls.push(req.url()));
  await login(page);
  const kept = await page.evaluate(() => sessionStorage.getItem('setforge.token'));
  check(kept === token, 'sessionStorage holds ' + kept);
  await page.reload();
  await page.waitForSelector('.mode.admin', { timeout: T(10000) });
  check(!urls.some((u) => u.includes(token)), 'the token appeared in a URL');
  state.urls = urls;
});

await step('create a template by dropping a CSV file, with the placeholder check', async () => {
  // goto from another address of the page is a same-document navigation: the view
  // drawn for the old address could be replaced by the hashchange's drawing just
  // after the drop (an empty new form). A reload draws the view once.
  await page.goto(base + '/#/templates');
  await page.reload();
  await page.waitForSelector('#new-template');
  const csv = 'fruit,colour\napple,red\nbanana,yellow\n"kiwi, gold",green\n';
  // Drop the file on the drop zone, as a person dragging it from a folder; again if
  // the summary does not show (a drawing of the view that replaced the form).
  const deadline = Date.now() + T(30000);
  for (;;) {
    await page.evaluate((text) => {
      const dt = new DataTransfer();
      dt.items.add(new File([text], 'fruits.csv', { type: 'text/csv' }));
      const zone = document.querySelector('.drop');
      zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
      zone.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, csv);
    try {
      await page.waitForSelector('.csv-info table', { timeout: T(2000) });
      break;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await page.waitForSelector('#new-template .drop');
    }
  }
  const info = await page.textContent('.csv-info');
  check(/3 items/.test(info) && /fruit, colour/.test(info), 'the CSV summary says: ' + info);
  check(await page.inputValue('#new-template input[name=name]') === 'fruits', 'the name was not taken from the file');
  await page.fill('#new-template textarea[name=prompt_template]', 'a {fruit} painted {shade}, {theme}');
  await page.waitForSelector('.check li.bad');
  const checkText = await page.textContent('.check');
  check(/\{shade\} → not a column/.test(checkText), 'the check says: ' + checkText);
  check(/\{fruit\} → a CSV column/.test(checkText), 'the check says: ' + checkText);
  // saving anyway: the daemon's own 400 fields, written next to the input
  await page.click('#new-template button[type=submit]');
  const err = page.locator('.field[data-field=prompt_template] .field-error');
  await err.waitFor({ state: 'visible', timeout: T(10000) });
  const text = await err.textContent();
  check(/shade/.test(text), 'the field error says: ' + text);
  check(await page.getAttribute('#new-template textarea[name=prompt_template]', 'aria-invalid') === 'true', 'not marked invalid');
  await shot(page, 'template-400.png');
  await page.fill('#new-template textarea[name=prompt_template]', 'a {fruit} painted {colour}, {theme}');
  await page.click('#new-template button[type=submit]');
  await page.waitForSelector('#items tbody tr', { timeout: T(10000) });
  const rows = await page.locator('#items tbody tr').count();
  check(rows === 3, rows + ' item rows');
  check(/kiwi, gold/.test(await page.textContent('#items')), 'quoted comma lost');
  check(/^#\/templates\/\d+$/.test(new URL(page.url()).hash), 'not on the template page: ' + page.url());
  await shot(page, 'template-created.png');
});

async function zodiacId() {
  const r = await api('GET', '/api/batch-templates?per_page=100');
  const t = r.doc.templates.find((x) => x.name === 'Zodiac Signs');
  check(t && t.template_item_count === 12, 'no 12-item zodiac template');
  return t.id;
}

async function startRun(album, seed) {
  const zid = await zodiacId();
  await page.goto(`${base}/#/generate/${zid}`);
  await page.waitForSelector('#generate');
  await page.fill('#gen-theme', 'woodcut print');
  await page.fill('#gen-album', album);
  await page.fill('#gen-seed', String(seed));
  await page.fill('#gen-steps', '20');
  // the preview follows the form: wait for the seed just typed
  await page.waitForFunction((s) => {
    const li = document.querySelector('.preview-list li');
    return li && li.textContent.includes('seed ' + s + ' ');
  }, seed, { timeout: T(10000) });
  return zid;
}

await step('generate: the preview shows the daemon\'s first prompts and seeds', async () => {
  const zid = await startRun('Zodiac woodcuts', 100);
  const shown = await page.$$eval('.preview-list li', (lis) => lis.map((li) => li.querySelector('.prompt').textContent));
  const api8 = await api('POST', `/api/batch-templates/${zid}/preview?limit=8`,
    { album_name: 'Zodiac woodcuts', user_theme: 'woodcut print', seed: 100, steps: 20 });
  check(api8.status === 200, 'preview ' + api8.status);
  check(shown.length === 8, shown.length + ' prompts shown');
  check(JSON.stringify(shown) === JSON.stringify(api8.doc.items.map((i) => i.prompt)), 'the page shows other prompts than the API');
  check(/of 12 prompts/.test(await page.textContent('.preview h2')), 'total not shown');
  // a bad value: the daemon's 400 fields next to the input, live
  await page.fill('#gen-steps', '500');
  const stepsErr = page.locator('.field[data-field=steps] .field-error');
  await stepsErr.waitFor({ state: 'visible', timeout: T(10000) });
  await shot(page, 'generate-400.png');
  await page.fill('#gen-steps', '20');
  await stepsErr.waitFor({ state: 'hidden', timeout: T(10000) });
  await shot(page, 'generate.png');
});

await step('a 12-item run fills its grid live and reaches 100%', async () => {
  const seen = new Set();
  // the queue is paused until the run's page shows it waiting at 0%, so the
  // page sees the run from its start however fast the machine draws
  check((await api('POST', '/api/queue/pause')).status === 200, 'cannot pause the queue');
  try {
    await page.click('#generate button[type=submit]');
    await page.waitForURL(/#\/runs\/\d+$/, { timeout: T(10000) });
    state.run1 = Number(page.url().match(/#\/runs\/(\d+)$/)[1]);
    await page.waitForSelector('#run-grid li.tile');
    check(await page.locator('#run-grid li.tile').count() === 12, 'not 12 tiles');
    check(await page.getAttribute('[role=progressbar]', 'aria-valuenow') === '0', 'the bar does not start at 0');
    check(/queued/.test(await page.textContent('.run-head .chip')), 'the run is not shown queued');
    check(await page.getAttribute('#run-download', 'href') === `/api/runs/${state.run1}/download.zip`, 'no zip of what is done');
    await page.evaluate(() => {
      window.__seen = new Set(['0']);
      // every step progress a tile shows, however briefly (an item of the
      // procedural backend takes 150 ms)
      window.__steps = [];
      new MutationObserver(() => {
        for (const t of document.querySelectorAll('#run-grid .tile-live')) {
          const bar = t.querySelector('[role=progressbar]');
          window.__steps.push(`${t.querySelector('.step-text').textContent} ${bar.getAttribute('aria-valuenow')}/${bar.getAttribute('aria-valuemax')}`);
        }
      }).observe(document.querySelector('#run-grid'), { subtree: true, childList: true, characterData: true, attributes: true });
    });
  } finally {
    check((await api('POST', '/api/queue/resume')).status === 200, 'cannot resume the queue');
  }
  // watch the bar move: record every value it shows until it is full
  await page.waitForFunction(() => {
    const v = document.querySelector('[role=progressbar]').getAttribute('aria-valuenow');
    (window.__seen = window.__seen || new Set()).add(v);
    return v === '100';
  }, null, { timeout: T(60000), polling: 20 });
  for (const v of await page.evaluate(() => [...window.__seen])) seen.add(v);
  await page.waitForSelector('.run-head .chip.st-completed', { timeout: T(10000) });
  await page.waitForFunction(() => document.querySelectorAll('#run-grid img').length === 12
    && [...document.querySelectorAll('#run-grid img')].every((i) => i.complete && i.naturalWidth > 0), null, { timeout: T(20000) });
  const alts = await page.$$eval('#run-grid img', (imgs) => imgs.map((i) => i.alt));
  const items = (await api('GET', `/api/runs/${state.run1}/items?per_page=100`)).doc.items;
  check(JSON.stringify(alts) === JSON.stringify(items.map((i) => i.prompt)), 'alt texts are not the prompts');
  const keys = await page.$$eval('#run-grid .key', (k) => k.map((x) => x.textContent));
  check(keys[0] === 'Aries' && keys[11] === 'Pisces', 'tile keys: ' + keys.join(','));
  console.log(`# progress values seen while the run was drawn: ${[...seen].join(', ')}`);
  const steps = await page.evaluate(() => window.__steps);
  check(steps.length > 0, 'no tile showed a step progress while the run was drawn');
  check(steps.every((x) => /^step (\d+)\/20 \1\/20$/.test(x)), 'step progress shown: ' + steps.slice(0, 5).join('; '));
  console.log(`# step progress shown while drawn (${steps.length}): ${[...new Set(steps)].slice(0, 8).join(', ')}`);
  check(await page.locator('#run-grid .tile-live, #run-grid .tile-preview').count() === 0, 'a finished run still shows steps');
  await page.waitForSelector('a[href^="#/albums/"]', { timeout: T(10000) });
  await shot(page, 'run-completed.png');
});

await step('first view of a run page: under 100 KB transferred before images', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const p = await ctx.newPage();
  const sizes = [];
  p.on('requestfinished', async (req) => {
    const s = await req.sizes().catch(() => null);
    if (s) sizes.push({ url: req.url(), bytes: s.responseBodySize + s.responseHeadersSize, image: /\/file$/.test(req.url()) });
  });
  await p.goto(`${base}/#/runs/${state.run1}`);
  await p.waitForFunction(() => document.querySelectorAll('#run-grid img').length === 12, null, { timeout: T(10000) });
  await p.waitForLoadState('networkidle');
  const before = sizes.filter((s) => !s.image);
  const total = before.reduce((a, s) => a + s.bytes, 0);
  const images = sizes.filter((s) => s.image).reduce((a, s) => a + s.bytes, 0);
  console.log(`# run page first view: ${total} bytes in ${before.length} responses before images `
    + `(${before.map((s) => new URL(s.url).pathname + '=' + s.bytes).join(', ')}); images ${images} bytes`);
  check(total < 100 * 1024, total + ' bytes');
  await ctx.close();
});

// Live previews: the procedural backend sends steps without previews, so a
// second daemon (SF_LIVE_BASE, started by test_web_browser.py) draws on
// tests/fakes/fake_a1111.py, slow (2.5 s an image) with a new live preview
// at every step. Its run page is watched at desktop and phone sizes while an
// item is drawn; then its preview requests are made to answer 404 (as when
// an item ends between the step event and the request): the preview must
// hide, not show a broken image; at the end the final images replace it all.
await step('live steps and previews on the tiles of items being drawn', async () => {
  const live = process.env.SF_LIVE_BASE, liveToken = process.env.SF_LIVE_TOKEN;
  check(live && liveToken, 'SF_LIVE_BASE / SF_LIVE_TOKEN are not set');
  const lapi = async (method, path, body) => {
    const r = await fetch(live + path, { method, body: body ? JSON.stringify(body) : undefined,
      headers: { Authorization: 'Bearer ' + liveToken, 'Content-Type': 'application/json' } });
    return { status: r.status, doc: await r.json() };
  };
  const t = await lapi('POST', '/api/batch-templates', { name: 'live shapes', prompt_template: 'a {shape}, {theme}',
    csv: 'shape\ncircle\nsquare\ntriangle\n', width: 256, height: 256 });
  check(t.status === 201, 'template ' + t.status);
  const r = await lapi('POST', `/api/batch-templates/${t.doc.id}/generate`, { album_name: 'live', user_theme: 'ink', seed: 3, steps: 20 });
  check(r.status === 202, 'generate ' + r.status);
  const rid = r.doc.run.id;
  const prompts = (await lapi('GET', `/api/runs/${rid}/items`)).doc.items.map((i) => i.prompt);
  // a tile whose preview is shown (loaded, not hidden) with its step bar
  const previewShown = () => [...document.querySelectorAll('#run-grid img.tile-preview')].some((i) =>
    !i.hidden && i.complete && i.naturalWidth > 0 && i.closest('.tile').querySelector('.tile-live [role=progressbar]'));
  const phoneCtx = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const [p, ph] = [await ctx.newPage(), await phoneCtx.newPage()];
  const perr = [p, ph].map(watch);
  const streams = [];
  p.on('request', (req) => { if (/\/events(\?|$)/.test(req.url())) streams.push(req.url()); });
  // the runs list follows the run without steps
  const listStream = p.waitForRequest((req) => /\/events(\?|$)/.test(req.url()), { timeout: T(10000) });
  await p.goto(`${live}/#/runs`);
  await p.waitForSelector(`.run-row[data-run="${rid}"]`, { timeout: T(10000) });
  await listStream;
  check(streams.length > 0 && streams.every((u) => !u.includes('steps')), 'runs list streams: ' + streams.join(' '));
  streams.length = 0;
  await Promise.all([p.goto(`${live}/#/runs/${rid}`), ph.goto(`${live}/#/runs/${rid}`)]);
  await Promise.all([p, ph].map((x) => x.waitForFunction(previewShown, null, { timeout: T(20000) })));
  check(streams.length > 0 && streams.every((u) => u.endsWith(`/api/runs/${rid}/events?steps=1`)), 'run page streams: ' + streams.join(' '));
  const tile = await p.evaluate(() => {
    const img = [...document.querySelectorAll('#run-grid img.tile-preview')].find((i) => !i.hidden && i.naturalWidth > 0);
    const li = img.closest('.tile'), bar = li.querySelector('.tile-live [role=progressbar]');
    return { alt: img.alt, src: img.getAttribute('src'), text: li.querySelector('.tile-live').textContent,
      now: bar.getAttribute('aria-valuenow'), max: bar.getAttribute('aria-valuemax'), vt: bar.getAttribute('aria-valuetext'),
      status: li.dataset.status, liveRegion: !!li.closest('[aria-live]') };
  });
  check(prompts.map((x) => x + ' (preview)').includes(tile.alt), 'preview alt: ' + tile.alt);
  check(new RegExp(`^/api/runs/${rid}/items/\\d+/preview\\?v=\\d+$`).test(tile.src), 'preview src: ' + tile.src);
  check(/^step \d+\/20gpu0$/.test(tile.text), 'the tile says: ' + tile.text);
  check(tile.max === '20' && Number(tile.now) >= 0 && Number(tile.now) <= 20, `bar aria ${tile.now}/${tile.max}`);
  check(/^step \d+ of 20 on gpu0$/.test(tile.vt), 'aria-valuetext: ' + tile.vt);
  check(tile.status === 'running', 'tile status ' + tile.status);
  check(!tile.liveRegion, 'the step text is inside an aria-live region');
  await shot(p, 'run-live.png');
  await shot(ph, 'phone-run-live.png');
  const wide = await ph.evaluate(() => document.documentElement.scrollWidth);
  check(wide <= 390, `the live run page is ${wide}px wide on a phone`);
  await phoneCtx.close();
  // previews answer 404 from now on: the shown one hides at the next step
  await p.route('**/items/*/preview*', (route) => route.fulfill({ status: 404, contentType: 'application/json',
    body: '{"error":"not found","code":"not_found"}' }));
  await p.waitForFunction(() => [...document.querySelectorAll('#run-grid img.tile-preview')].some((i) =>
    i.hidden && i.complete && i.naturalWidth === 0 && i.getAttribute('src')), null, { timeout: T(10000) });
  check(!(await p.evaluate(previewShown)), 'a preview answered 404 is still shown');
  await p.unroute('**/items/*/preview*');
  // the end: the final images, and no step nor preview left
  await p.waitForFunction((n) => document.querySelectorAll('#run-grid .tile-img img').length === n
    && [...document.querySelectorAll('#run-grid .tile-img img')].every((i) => i.complete && i.naturalWidth > 0)
    && !document.querySelector('#run-grid .tile-live, #run-grid .tile-preview'), prompts.length, { timeout: T(30000) });
  const alts = await p.$$eval('#run-grid .tile-img img', (imgs) => imgs.map((i) => i.alt));
  check(JSON.stringify(alts) === JSON.stringify(prompts), 'final alts: ' + alts.join(' | '));
  check(perr.every((e) => e.length === 0), perr.flat().join('; '));
  await ctx.close();
});

// The second run is started while the whole queue is paused (an admin
// route), so it is still queued, whatever the machine's speed, when its
// page pauses, resumes and cancels it.
await step('pause, resume, cancel and retry a second run', async () => {
  check((await api('POST', '/api/queue/pause')).status === 200, 'cannot pause the queue');
  try {
    await startRun('Zodiac to cancel', 200);
    await page.click('#generate button[type=submit]');
    await page.waitForURL(/#\/runs\/\d+$/, { timeout: T(10000) });
    state.run2 = Number(page.url().match(/#\/runs\/(\d+)$/)[1]);
    await page.waitForSelector('#run-pause:not([hidden])', { timeout: T(10000) });
    await page.click('#run-pause');
    await page.waitForSelector('.run-head .chip.st-paused', { timeout: T(10000) });
    check(/Paused/.test(await page.textContent('#run-eta')), 'the ETA line does not say paused');
    await page.click('#run-resume');
    await page.waitForSelector('.run-head .chip.st-queued', { timeout: T(10000) });
    await page.click('#run-cancel');
    await page.waitForSelector('.run-head .chip.st-canceled', { timeout: T(20000) });
  } finally {
    await api('POST', '/api/queue/resume');
  }
  const r = (await api('GET', `/api/runs/${state.run2}`)).doc;
  check(r.status === 'canceled' && r.canceled_items === 12, 'the run: ' + JSON.stringify(r));
  await page.waitForFunction(() => document.querySelectorAll('#run-grid li.st-canceled').length === 12, null, { timeout: T(10000) });
  await page.waitForSelector('#run-retry:not([hidden])', { timeout: T(20000) });
  await shot(page, 'run-canceled.png');
  await page.click('#run-retry');
  await page.waitForSelector('.run-head .chip.st-completed', { timeout: T(60000) });
  await page.waitForFunction(() => document.querySelectorAll('#run-grid img').length === 12, null, { timeout: T(20000) });
  const after = (await api('GET', `/api/runs/${state.run2}`)).doc;
  check(after.status === 'completed' && after.completed_items === 12, 'after retry: ' + JSON.stringify(after));
  await shot(page, 'run-retried.png');
});

await step('the album: gallery, viewer with arrows and Escape, prompt and seed', async () => {
  const run = (await api('GET', `/api/runs/${state.run1}`)).doc;
  state.album = run.album_id;
  await page.goto(`${base}/#/runs/${state.run1}`);
  await page.click(`a[href="#/albums/${state.album}"]`);
  await page.waitForSelector('#album-grid img');
  check(await page.locator('#album-grid img').count() === 12, 'not 12 images');
  // by keyboard: focus the first image's button and press Enter
  await page.focus('#album-grid .tile-img');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#viewer[open]');
  check(/Image 1 of 12/.test(await page.textContent('#viewer-count')), 'not the first image');
  const img1 = (await api('GET', `/api/albums/${state.album}?per_page=100`)).doc.images;
  check((await page.textContent('#viewer-prompt')) === img1[0].prompt, 'viewer prompt differs');
  check((await page.textContent('#viewer-meta')).includes(String(img1[0].seed)), 'viewer seed missing');
  await page.keyboard.press('ArrowRight');
  await page.waitForFunction(() => /Image 2 of 12/.test(document.querySelector('#viewer-count').textContent));
  check((await page.textContent('#viewer-prompt')) === img1[1].prompt, 'ArrowRight did not show image 2');
  await page.waitForFunction(() => document.querySelector('#viewer-img').naturalWidth > 0);
  await shot(page, 'album-viewer.png');
  await page.keyboard.press('ArrowLeft');
  await page.waitForFunction(() => /Image 1 of 12/.test(document.querySelector('#viewer-count').textContent));
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => !document.querySelector('#viewer').open);
  await shot(page, 'album.png');
});

await step('download the album zip and check its manifest against the API', async () => {
  const href = await page.getAttribute('#album-download', 'href');
  check(href === `/api/albums/${state.album}/download.zip`, 'download link ' + href);
  const probe = await fetch(base + href, { method: 'HEAD' });
  if (probe.status === 404) {
    // The zip route comes from another branch (issue 12, "Take the set
    // home"); until it is merged this step says so loudly.
    throw new Error(`PENDING: ${href} answers 404: the zip route (GET /api/albums/<id>/download.zip) is not in this build`);
  }
  const [dl] = await Promise.all([page.waitForEvent('download', { timeout: T(20000) }), page.click('#album-download')]);
  const file = join(artifacts, 'album.zip');
  await dl.saveAs(file);
  // python3's zipfile reads it (the test of every entry's CRC included) and
  // hashes each file, so the manifest is checked against the bytes too
  const manifest = JSON.parse(execFileSync('python3', ['-c',
    'import sys, zipfile, json, hashlib; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; '
    + 'print(json.dumps({"names": z.namelist(), "manifest": json.loads(z.read("manifest.json")), '
    + '"sha": {n: hashlib.sha256(z.read(n)).hexdigest() for n in z.namelist() if n.endswith(".png")}}))', file]).toString());
  const images = (await api('GET', `/api/albums/${state.album}?per_page=100`)).doc.images;
  const rows = manifest.manifest.images;
  check(manifest.manifest.album.id === state.album, 'manifest album ' + JSON.stringify(manifest.manifest.album));
  check(rows.length === images.length && images.length === 12, `manifest has ${rows.length} rows, the album ${images.length} images`);
  rows.forEach((row, i) => {
    for (const k of ['id', 'prompt', 'seed', 'sha256', 'item_index', 'width', 'height', 'steps'])
      check(row[k] === images[i][k], `row ${i} ${k}: ${row[k]} vs the API's ${images[i][k]}`);
    check(manifest.sha[row.file] === row.sha256, `row ${i}: ${row.file} does not hash to its sha256`);
  });
  check(manifest.names.filter((n) => n.endsWith('.png')).length === images.length, 'not one png per image');
  check(manifest.names.includes('02_taurus.png'), 'names: ' + manifest.names.join(' '));
  writeFileSync(join(artifacts, 'album-manifest.json'), JSON.stringify(manifest, null, 1));
});

await step('the page at 390×844: no sideways scrolling, everything reachable', async () => {
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  const p = await phone.newPage();
  const perr = watch(p);
  await p.goto(base + '/');
  await p.waitForSelector('table.list');
  await shot(p, 'phone-templates.png');
  await login(p);
  for (const [hash, sel, name] of [[`#/runs/${state.run1}`, '#run-grid img', 'phone-run.png'],
    ['#/runs', '.run-row', 'phone-runs.png'], [`#/generate/${await zodiacId()}`, '.preview-list li', 'phone-generate.png'],
    [`#/albums/${state.album}`, '#album-grid img', 'phone-album.png']]) {
    await p.goto(base + '/' + hash);
    await p.waitForSelector(sel, { timeout: T(10000) });
    const wide = await p.evaluate(() => document.documentElement.scrollWidth);
    check(wide <= 390, `${hash} is ${wide}px wide`);
    await shot(p, name);
  }
  await p.click('#album-grid .tile-img');
  await p.waitForSelector('#viewer[open]');
  await p.waitForFunction(() => document.querySelector('#viewer-img').naturalWidth > 0);
  await p.screenshot({ path: join(artifacts, 'phone-viewer.png') });
  check(perr.length === 0, perr.join('; '));
  await phone.close();
});

await step('the runs list shows every run with its bar', async () => {
  const streams = [];
  const onReq = (req) => { if (/\/events(\?|$)/.test(req.url())) streams.push(req.url()); };
  page.on('request', onReq);
  await page.goto(base + '/#/runs');
  await page.waitForSelector('.run-row');
  check(await page.locator('.run-row').count() >= 2, 'runs missing');
  const full = await page.$$eval(`.run-row[data-run="${state.run1}"] [role=progressbar]`, (b) => b.map((x) => x.getAttribute('aria-valuenow')));
  check(full[0] === '100', 'run 1 bar at ' + full[0]);
  page.off('request', onReq);
  check(!streams.some((u) => u.includes('steps')), 'the runs list asks for steps: ' + streams.join(' '));
  await shot(page, 'runs.png');
});

// With a token the page reads a run's stream with fetch. The first two
// connections are cut after one event (canned answers); the page must come
// back by itself, sending Last-Event-ID, and still see the whole run.
async function dropAndResume(album, seed) {
  const ctx = await browser.newContext({ viewport: { width: 1024, height: 800 } });
  const p = await ctx.newPage();
  const perr = watch(p);
  const seenIds = [], urls = [];
  let calls = 0;
  await p.route('**/api/runs/*/events*', async (route) => {
    calls++;
    urls.push(route.request().url());
    seenIds.push((await route.request().allHeaders())['last-event-id'] || '');
    if (calls <= 2) {
      await route.fulfill({ status: 200, headers: { 'Content-Type': 'text/event-stream' },
        body: `retry: 100\n\nid: ${calls}\nevent: status\ndata: {"run_id":0,"status":"queued","total_items":12}\n\n` });
    } else await route.continue();
  });
  await p.goto(base + '/');
  await p.waitForSelector('table.list');
  await login(p);
  const zid = await zodiacId();
  const r = await api('POST', `/api/batch-templates/${zid}/generate`, { album_name: album, user_theme: 'ink', seed });
  check(r.status === 202, 'generate ' + r.status);
  await p.goto(`${base}/#/runs/${r.doc.run.id}`);
  await p.waitForFunction(() => document.querySelector('[role=progressbar]')?.getAttribute('aria-valuenow') === '100', null, { timeout: T(60000) });
  await p.waitForFunction(() => document.querySelectorAll('#run-grid img').length === 12, null, { timeout: T(20000) });
  check(calls >= 3, 'the page did not reconnect (' + calls + ' connections)');
  check(seenIds[0] === '' && seenIds[1] === '1' && seenIds[2] === '2', 'Last-Event-ID sent: ' + JSON.stringify(seenIds));
  check(urls.every((u) => u.endsWith('/events?steps=1')), 'the run page does not ask for steps: ' + urls.join(' '));
  check(perr.length === 0, perr.join('; '));
  await ctx.close();
  return r.doc.run.id;
}

// EventSource's Last-Event-ID is added below where playwright sees request
// headers, so for it the proof is in what the page then receives: the
// stream of a finished run is cut (twice, canned answers) at the id of its
// sixth event; the events the daemon sends after that must all come after
// it (a reconnect without Last-Event-ID would replay the run from its
// start).
await step('read-only (EventSource): a dropped stream resumes with Last-Event-ID', async () => {
  const zid = await zodiacId();
  const r = await api('POST', `/api/batch-templates/${zid}/generate`, { album_name: 'Resumed read-only', user_theme: 'ink', seed: 300 });
  check(r.status === 202, 'generate ' + r.status);
  const rid = r.doc.run.id;
  const t0 = Date.now();
  while ((await api('GET', `/api/runs/${rid}`)).doc.status !== 'completed') {
    check(Date.now() - t0 < T(60000), 'the run did not complete');
    await new Promise((res) => setTimeout(res, 50));
  }
  const all = await (await fetch(`${base}/api/runs/${rid}/events`)).text();
  const ids = [...all.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
  check(ids.length >= 13, 'the run has ' + ids.length + ' events');
  const cut = ids[5];
  const ctx = await browser.newContext();
  await ctx.addInitScript(() => {
    window.__esIds = [];
    const add = EventSource.prototype.addEventListener;
    EventSource.prototype.addEventListener = function (type, fn, opt) {
      // step events (none for a finished run) carry no id of their own
      return add.call(this, type, (e) => { if (type !== 'step') window.__esIds.push(Number(e.lastEventId)); fn(e); }, opt);
    };
  });
  const p = await ctx.newPage();
  const perr = watch(p);
  let calls = 0;
  await p.route('**/api/runs/*/events*', async (route) => {
    if (++calls <= 2) {
      await route.fulfill({ status: 200, headers: { 'Content-Type': 'text/event-stream' },
        body: `retry: 100\n\nid: ${cut}\nevent: status\ndata: {"run_id":${rid},"status":"running","total_items":12}\n\n` });
    } else await route.continue();
  });
  await p.goto(`${base}/#/runs/${rid}`);
  await p.waitForFunction(() => window.__esIds.length > 2 && document.querySelector('.chip.st-completed'), null, { timeout: T(20000) });
  await p.waitForFunction(() => document.querySelectorAll('#run-grid img').length === 12);
  const got = await p.evaluate(() => window.__esIds);
  const fromDaemon = got.filter((id) => id !== cut);
  check(calls >= 3, calls + ' connections');
  check(fromDaemon.length > 0 && fromDaemon.every((id) => id > cut),
    `after the cut at ${cut} the page got ids ${JSON.stringify(got)} (the run's: ${JSON.stringify(ids)})`);
  check(fromDaemon.length === ids.filter((id) => id > cut).length, 'events lost or repeated: ' + JSON.stringify(got));
  check(perr.length === 0, perr.join('; '));
  await ctx.close();
});

await step('admin (fetch stream): a dropped stream resumes with Last-Event-ID', async () => {
  state.run3 = await dropAndResume('Resumed admin', 400);
});

await step('a private run: hidden from the read-only page, shown to the admin page', async () => {
  const run = (await api('GET', `/api/runs/${state.run3}`)).doc;
  check((await api('PUT', `/api/albums/${run.album_id}`, { is_public: false })).status === 200, 'cannot make it private');
  const anon = await browser.newContext();
  const a = await anon.newPage();
  await a.goto(`${base}/#/runs/${state.run3}`);
  await a.waitForSelector('h1:has-text("Not found")', { timeout: T(10000) });
  check(/private/.test(await a.textContent('#view')), 'no word on private runs');
  await a.goto(`${base}/#/albums`);
  await a.waitForSelector('h1:has-text("Albums")');
  check(!(await a.textContent('#view')).includes('Resumed admin'), 'the private album is listed');
  await anon.close();
  // its images are 404s without the token: the admin page loads them with it
  const loaded = () => [...document.querySelectorAll('#view img')].length > 0
    && [...document.querySelectorAll('#view img')].every((i) => i.complete && i.naturalWidth > 0);
  await page.goto(`${base}/#/runs/${state.run3}`);
  await page.waitForFunction(() => document.querySelectorAll('#run-grid img').length === 12, null, { timeout: T(20000) });
  await page.waitForFunction(loaded, null, { timeout: T(20000) });
  await page.click('#run-grid .tile-img');
  await page.waitForFunction(() => document.querySelector('#viewer-img').naturalWidth > 0, null, { timeout: T(10000) });
  await page.keyboard.press('Escape');
  await page.goto(`${base}/#/albums`);
  await page.waitForSelector('.album-card');
  await page.waitForFunction(loaded, null, { timeout: T(20000) });
  check((await page.textContent('#view')).includes('private'), 'the admin page does not mark the album private');
  // its zip needs the token too: the button fetches it with the header
  check((await fetch(`${base}/api/albums/${run.album_id}/download.zip`)).status === 404, 'the private zip is public');
  await page.goto(`${base}/#/albums/${run.album_id}`);
  await page.waitForSelector('#album-download');
  const [dl] = await Promise.all([page.waitForEvent('download', { timeout: T(20000) }), page.click('#album-download')]);
  const file = join(artifacts, 'private-album.zip');
  await dl.saveAs(file);
  const n = execFileSync('python3', ['-c', 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); '
    + 'assert z.testzip() is None; print(sum(n.endswith(".png") for n in z.namelist()))', file]).toString().trim();
  check(n === '12', 'the private zip holds ' + n + ' images');
  await shot(page, 'albums-admin.png');
});

// SF_FAILED_RUN: a finished run whose three items failed (written by
// test_web_browser.py); its first error names an endpoint's address.
await step('failed items show their error (addresses hidden from the read-only page)', async () => {
  const rid = process.env.SF_FAILED_RUN;
  check(rid, 'SF_FAILED_RUN is not set');
  const anon = await browser.newContext();
  const a = await anon.newPage();
  const perr = watch(a);
  await a.goto(`${base}/#/runs/${rid}`);
  await a.waitForFunction(() => document.querySelectorAll('#run-grid li.st-failed .err').length === 3, null, { timeout: T(10000) });
  const errs = await a.$$eval('#run-grid li.st-failed .err', (e) => e.map((x) => x.textContent));
  check(errs[0] === 'connection refused by <url>', 'read-only error 0: ' + errs[0]);
  check(errs[1] === 'HTTP 500: out of memory', 'read-only error 1: ' + errs[1]);
  check(/failed/.test(await a.textContent('.run-head .chip')), 'run status not shown');
  check((await a.textContent('#run-counts')).startsWith('0 done, 3 failed'), 'counts: ' + await a.textContent('#run-counts'));
  await shot(a, 'run-failed.png');
  check(perr.length === 0, perr.join('; '));
  await anon.close();
  await page.goto(`${base}/#/runs/${rid}`);
  await page.waitForFunction(() => document.querySelectorAll('#run-grid li.st-failed .err').length === 3, null, { timeout: T(10000) });
  check((await page.textContent('#run-grid li.st-failed .err')).includes('http://127.0.0.1:9/'), 'the admin page does not show the address');
  check(await page.isVisible('#run-retry'), 'no retry button for a failed run');
});

await step('a run of 120 items shows 100 tiles, then the rest on demand', async () => {
  const csv = 'n,word\n' + Array.from({ length: 120 }, (_, i) => `${i},w${i}`).join('\n') + '\n';
  const t = await api('POST', '/api/batch-templates', { name: 'hundred twenty', prompt_template: '{word} {theme}', csv });
  check(t.status === 201, 'template ' + t.status);
  check((await api('POST', '/api/queue/pause')).status === 200, 'cannot pause the queue');
  let rid;
  try {
    const r = await api('POST', `/api/batch-templates/${t.doc.id}/generate`, { album_name: 'big', user_theme: 'x', seed: 1 });
    check(r.status === 202, 'generate ' + r.status);
    rid = r.doc.run.id;
    await page.goto(`${base}/#/runs/${rid}`);
    await page.waitForSelector('#run-more:not([hidden])', { timeout: T(10000) });
    check(await page.locator('#run-grid li.tile').count() === 100, 'first view tiles: ' + await page.locator('#run-grid li.tile').count());
    check(/20 not shown/.test(await page.textContent('#run-more')), 'button says: ' + await page.textContent('#run-more'));
    await page.click('#run-more');
    await page.waitForFunction(() => document.querySelectorAll('#run-grid li.tile').length === 120, null, { timeout: T(10000) });
    check(await page.isHidden('#run-more'), 'the button stays after the last page');
    const keys = await page.$$eval('#run-grid .key', (k) => [k[0].textContent, k[119].textContent]);
    check(keys[0] === '0' && keys[1] === '119', 'keys ' + keys);
    check((await api('POST', `/api/runs/${rid}/cancel`)).status === 200, 'cannot cancel');
  } finally {
    await api('POST', '/api/queue/resume');
  }
});

await step('usable by keyboard: Tab to a section, Enter, Tab to an image, Enter', async () => {
  await page.goto(base + '/#/templates');
  await page.reload(); // Tab starts from the top of a fresh page
  await page.waitForSelector('table.list');
  let reached = false;
  for (let i = 0; i < 10 && !reached; i++) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate(() => document.activeElement.textContent === 'Runs');
  }
  check(reached, 'Tab never reached the Runs link');
  await page.keyboard.press('Enter');
  await page.waitForSelector('.run-row');
  check(new URL(page.url()).hash === '#/runs', 'Enter went to ' + page.url());
  // from the list, Tab to the first run's link and open it
  await page.focus(`.run-row[data-run="${state.run1}"] a`);
  await page.keyboard.press('Enter');
  await page.waitForSelector('#run-grid .tile-img', { timeout: T(10000) });
  await page.focus('#run-grid .tile-img');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#viewer[open]');
  check(/Image 2 of/.test(await page.textContent('#viewer-count')), 'Tab then Enter did not open the second image');
  const ring = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  check(ring !== 'none', 'no visible focus ring in the viewer');
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => !document.querySelector('#viewer').open);
});

await step('no script errors, and the token never in a URL', async () => {
  check(errors.length === 0, errors.join('; '));
  check(!state.urls.some((u) => u.includes(token)), 'token in a URL');
});

await browser.close();
console.log(`RESULT web.test.mjs passed=${passed} failed=${failed} pending=${pending}`);
process.exit(failed ? 1 : 0);
