// webdash_check.js: opens bmas's GET /dashboard in headless Chromium (Debian's, driven by
// puppeteer-core) and writes what a user would see, as JSON: the console errors, failed and
// non-local requests, the numbers each uPlot chart holds, the matrix and model tables' data-*
// attributes and the tiles. The test compares them with /aggregates fetched by curl.
//
// usage: node webdash_check.js URL_WITH_FRAGMENT URL_WITHOUT_TOKEN OUT.json SCREENSHOT.png
// The second URL is opened in a fresh context (no sessionStorage): what a page without the
// token shows ("-": not opened, for a bmas without a token).
'use strict';
const fs = require('fs');
const puppeteer = require('puppeteer-core');

const [url, bareUrl, outFile, shot] = process.argv.slice(2);

async function visit(browser, target, settle) {
  const ctx = await browser.createBrowserContext();
  const page = await ctx.newPage();
  await page.setViewport({ width: 1400, height: 1000 });
  const seen = { consoleErrors: [], failed: [], requests: [] };
  page.on('console', (m) => { if (m.type() === 'error') seen.consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => seen.consoleErrors.push('pageerror: ' + e.message));
  page.on('request', (r) => seen.requests.push(r.url()));
  page.on('requestfailed', (r) => seen.failed.push(`${r.url()}: ${r.failure() && r.failure().errorText}`));
  page.on('response', (r) => { if (r.status() >= 400) seen.failed.push(`${r.url()}: HTTP ${r.status()}`); });
  await page.goto(target, { waitUntil: 'load', timeout: 60000 });
  await settle(page);
  return { ctx, page, seen };
}

(async () => {
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-default-apps', '--disable-extensions'],
  });
  try {
    // Two updates: the first load and one refresh by the page's own timer.
    const a = await visit(browser, url, (p) =>
      p.waitForFunction(() => window.bmasDashboard && window.bmasDashboard.updates >= 2, { timeout: 60000 }));
    const got = await a.page.evaluate(() => {
      const d = window.bmasDashboard;
      const plots = {};
      for (const [id, u] of Object.entries(d.plots))
        plots[id] = { labels: u.series.slice(1).map((s) => s.label), data: u.data.map((a) => Array.from(a)) };
      const nodata = {};
      for (const n of document.querySelectorAll('.chart .nodata')) nodata[n.parentElement.id.slice(2)] = n.textContent;
      const attrs = (sel) => Array.from(document.querySelectorAll(sel), (e) => Object.assign({}, e.dataset));
      const tiles = {};
      for (const t of document.querySelectorAll('[data-value]')) tiles[t.id] = { value: t.dataset.value, text: t.textContent };
      return { from: d.from, to: d.to, step: d.step, updates: d.updates, plots, nodata, tiles,
        matrix: attrs('#matrix td[data-source]'), models: attrs('#models tr[data-model]'),
        attribution: attrs('#attr tr[data-key]'),
        state: document.getElementById('state').textContent, hash: location.hash,
        error: document.getElementById('error').hidden ? '' : document.getElementById('error').textContent };
    });
    await a.page.screenshot({ path: shot, fullPage: true });
    await a.ctx.close();
    let bare = null;
    if (bareUrl !== '-') {
      const b = await visit(browser, bareUrl, (p) =>
        p.waitForFunction(() => !document.getElementById('error').hidden, { timeout: 60000 }));
      bare = { error: await b.page.$eval('#error', (e) => e.textContent), ...b.seen };
      await b.ctx.close();
    }
    fs.writeFileSync(outFile, JSON.stringify({ ...a.seen, ...got, bare }, null, 1));
  } finally {
    await browser.close();
  }
})().catch((e) => { console.error(e); process.exit(1); });
