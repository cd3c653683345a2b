// dashboard.js: GET /dashboard's script. Reads /aggregates and /status from the bmas that
// served it (nothing else), draws them with uPlot and refreshes every 10 s. The numbers each
// chart and table holds are left on window.bmasDashboard and in data-* attributes, so a test
// can compare them with /aggregates.
'use strict';
(function () {
  // Window: [span, bucket] in seconds. The buckets are whole multiples of /aggregates' minute.
  const RANGES = { '1h': [3600, 60], '6h': [21600, 300], '24h': [86400, 900], '7d': [604800, 3600] };
  const REFRESH_MS = 10000;
  const TOP_MODELS = 8; // chart series by model: the top ones by tokens, the rest as "other"
  const TOP_TABLE = 15;
  const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2',
    '#7f7f7f', '#bcbd22', '#17becf'];
  const METRICS = ['tokens', 'invocations', 'cost'];
  const GROUPS = ['profile_type', 'model_id'];

  const $ = (id) => document.getElementById(id);
  const el = (tag, text, attrs) => {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  };
  const tokensOf = (r) => r.input_tokens + r.output_tokens + r.cache_read_input_tokens + r.cache_write_input_tokens;
  // Cost is shown when bmas has a price file (/status cost.prices; without one every cost_usd
  // is 0 and every invocation unpriced, which a chart of zeros would misstate).
  let pricesOff = false;
  const hasCost = (obj) => !pricesOff && obj !== null && typeof obj === 'object' && typeof obj.cost_usd === 'number';
  const fmtInt = (n) => n.toLocaleString('en-US');
  const fmtUsd = (n) => '$' + n.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: n < 1 ? 4 : 2 });
  const fmtShort = (n) => {
    const a = Math.abs(n);
    if (a >= 1e9) return +(n / 1e9).toFixed(2) + 'G';
    if (a >= 1e6) return +(n / 1e6).toFixed(2) + 'M';
    if (a >= 1e3) return +(n / 1e3).toFixed(2) + 'k';
    return String(+n.toFixed(4));
  };
  const iso = (sec) => new Date(sec * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');

  // The token comes once in the fragment (#token=...), so it never reaches a server log or a
  // Referer; it is kept for this tab only and taken out of the address bar.
  const frag = new URLSearchParams(location.hash.slice(1));
  if (frag.has('token')) {
    sessionStorage.setItem('bmas_token', frag.get('token'));
    frag.delete('token');
    history.replaceState(null, '', location.pathname + location.search + (frag.toString() ? '#' + frag : ''));
  }
  const token = sessionStorage.getItem('bmas_token');
  const range = $('range');
  if (RANGES[frag.get('range')]) range.value = frag.get('range');

  const state = { updates: 0, plots: {} };
  window.bmasDashboard = state;

  async function getJSON(path) {
    const headers = token ? { Authorization: 'Bearer ' + token } : {};
    const r = await fetch(path, { headers, cache: 'no-store' });
    if (!r.ok) {
      let msg = `${path.split('?')[0]}: HTTP ${r.status}`;
      try {
        const e = await r.json();
        msg += ` ${e.errorCode}: ${e.message}`;
      } catch (_) { /* not an error body */ }
      if (r.status === 401)
        msg += token ? ' (the token given is wrong)' : ' (this bmas needs its token: open /dashboard#token=...)';
      throw new Error(msg);
    }
    return r.json();
  }

  // A series over the window's n buckets from /aggregates?group_by=minute rows (zero where no
  // row); cost only when priced.
  function bucketed(rows, from, step, n, priced) {
    const s = { tokens: new Array(n).fill(0), invocations: new Array(n).fill(0),
      cost: priced ? new Array(n).fill(0) : null };
    for (const r of rows) {
      const i = Math.floor((Date.parse(r.minute) / 1000 - from) / step);
      if (i < 0 || i >= n) continue;
      s.tokens[i] += tokensOf(r);
      s.invocations[i] += r.invocations;
      if (priced && typeof r.cost_usd === 'number') s.cost[i] += r.cost_usd;
    }
    return s;
  }

  // The keys ranked by tokens (then by name), from rows of /aggregates grouped by key.
  const ranked = (rows, key) => [...rows].sort((a, b) => tokensOf(b) - tokensOf(a) ||
    (a[key] < b[key] ? -1 : a[key] > b[key] ? 1 : 0)).map((r) => r[key]);
  const byLabel = (a, b) => (a.label === 'other') - (b.label === 'other') ||
    (a.label < b.label ? -1 : a.label > b.label ? 1 : 0);

  function drawChart(group, metric, data) {
    const id = `${group}-${metric}`;
    const box = $('c-' + id);
    const old = state.plots[id];
    const labels = data.series.map((s) => s.label);
    const none = metric === 'cost' && !data.priced ? 'no prices' : data.series.length === 0 ? 'no data in this window' : null;
    let msg = box.querySelector('.nodata');
    if (none) {
      if (old) { old.destroy(); delete state.plots[id]; }
      if (!msg) box.appendChild(msg = el('div', '', { class: 'nodata' }));
      msg.textContent = none;
      return;
    }
    if (msg) msg.remove();
    const arrays = [data.x, ...data.series.map((s) => s[metric])];
    if (old && old.series.length - 1 === labels.length && old.series.slice(1).every((s, i) => s.label === labels[i])) {
      old.setData(arrays);
      return;
    }
    if (old) old.destroy();
    const fmt = metric === 'cost' ? (v) => (v === null ? '–' : fmtUsd(v)) : (v) => (v === null ? '–' : fmtInt(v));
    state.plots[id] = new uPlot({
      width: Math.max(300, box.clientWidth),
      height: 240,
      scales: { x: { time: true } },
      series: [{}, ...labels.map((l, i) => ({ label: l, stroke: COLORS[i % COLORS.length], width: 1.5,
        value: (u, v) => fmt(v), points: { show: false } }))],
      axes: [{}, { size: 64, values: (u, vals) => vals.map(fmtShort) }],
    }, arrays, box);
  }

  function drawMatrix(rows) {
    const t = $('matrix');
    t.replaceChildren();
    if (rows.length === 0) {
      t.appendChild(el('tr')).appendChild(el('td', 'no data in this window'));
      return;
    }
    const src = [...new Set(rows.map((r) => r.source_region))].sort();
    const inf = [...new Set(rows.map((r) => r.inference_region))].sort();
    const cell = new Map(rows.map((r) => [r.source_region + '\n' + r.inference_region, r]));
    const head = t.appendChild(el('tr'));
    head.appendChild(el('th', 'source \\ inference'));
    for (const i of inf) head.appendChild(el('th', i));
    for (const s of src) {
      const tr = t.appendChild(el('tr'));
      tr.appendChild(el('th', s));
      for (const i of inf) {
        const r = cell.get(s + '\n' + i);
        const td = tr.appendChild(el('td', r ? fmtInt(r.invocations) : '0', {
          'data-source': s, 'data-inference': i,
          'data-invocations': r ? r.invocations : 0, 'data-tokens': r ? tokensOf(r) : 0 }));
        if (r) td.appendChild(el('small', fmtInt(tokensOf(r))));
        else td.className = 'zero';
      }
    }
  }

  function drawModels(rows) {
    const t = $('models');
    t.replaceChildren();
    const priced = rows.length > 0 && rows.every(hasCost);
    const unpriced = rows.some((r) => typeof r.unpriced_invocations === 'number');
    const head = t.appendChild(el('tr'));
    for (const h of ['model', 'invocations', 'input', 'output', 'cache read', 'cache write', 'tokens', 'cost (USD)'])
      head.appendChild(el('th', h));
    if (unpriced) head.appendChild(el('th', 'unpriced'));
    const top = [...rows].sort((a, b) => tokensOf(b) - tokensOf(a) || (a.model_id < b.model_id ? -1 : 1)).slice(0, TOP_TABLE);
    for (const r of top) {
      const tr = t.appendChild(el('tr', null, { 'data-model': r.model_id, 'data-invocations': r.invocations,
        'data-tokens': tokensOf(r), 'data-cost': priced ? r.cost_usd : '' }));
      tr.appendChild(el('td', r.model_id));
      for (const v of [r.invocations, r.input_tokens, r.output_tokens, r.cache_read_input_tokens,
        r.cache_write_input_tokens, tokensOf(r)]) tr.appendChild(el('td', fmtInt(v)));
      tr.appendChild(el('td', priced ? fmtUsd(r.cost_usd) : 'no prices'));
      if (unpriced) tr.appendChild(el('td', typeof r.unpriced_invocations === 'number' ? fmtInt(r.unpriced_invocations) : ''));
    }
    if (top.length === 0) t.appendChild(el('tr')).appendChild(el('td', 'no data in this window'));
  }

  // One table per attribution key (BMAS_ATTRIBUTION_KEYS, from /status): its values by tokens,
  // "other" being the values past BMAS_ATTRIBUTION_MAX_VALUES.
  function drawAttr(keys, answers) {
    const box = $('attr');
    box.replaceChildren();
    $('attr-card').hidden = keys.length === 0;
    keys.forEach((k, i) => {
      const rows = answers[i].rows;
      const col = 'attr.' + k;
      const priced = rows.length > 0 && rows.every(hasCost);
      const t = box.appendChild(el('table', null, { 'data-attr': k }));
      const head = t.appendChild(el('tr'));
      for (const h of [k, 'invocations', 'tokens', 'cost (USD)']) head.appendChild(el('th', h));
      const top = [...rows].sort((a, b) => tokensOf(b) - tokensOf(a) || (a[col] < b[col] ? -1 : 1)).slice(0, TOP_TABLE);
      for (const r of top) {
        const tr = t.appendChild(el('tr', null, { 'data-key': k, 'data-attr-value': r[col], 'data-invocations': r.invocations,
          'data-tokens': tokensOf(r), 'data-cost': priced ? r.cost_usd : '' }));
        for (const v of [r[col] === '' ? '(not set)' : r[col], fmtInt(r.invocations), fmtInt(tokensOf(r)), priced ? fmtUsd(r.cost_usd) : 'no prices'])
          tr.appendChild(el('td', v));
      }
      if (top.length === 0) t.appendChild(el('tr')).appendChild(el('td', 'no data in this window'));
    });
  }

  function tile(id, text, value) {
    $(id).textContent = text;
    $(id).setAttribute('data-value', value);
  }

  function drawStatus(st) {
    const badge = $('state');
    badge.textContent = st.status;
    badge.className = 'badge ' + st.status;
    const errors = Object.values(st.errors || {}).reduce((a, b) => a + b, 0);
    tile('s-backlog', fmtInt(st.publish.pending), st.publish.pending);
    tile('s-errors', fmtInt(errors), errors);
    tile('s-flush', st.publish.last_flush ? new Date(st.publish.last_flush).toLocaleString() : 'never', st.publish.last_flush || '');
    const dl = $('service');
    dl.replaceChildren();
    const add = (k, v) => { dl.appendChild(el('dt', k)); dl.appendChild(el('dd', v)); };
    add('version', `${st.version}, up ${fmtInt(st.uptime_s)} s`);
    add('objects', `${fmtInt(st.objects.processed)} processed, ${fmtInt(st.objects.duplicates)} duplicates, ` +
      `${fmtInt(st.objects.failed)} failed attempts, ${fmtInt(st.objects.quarantined)} quarantined`);
    add('records', `${fmtInt(st.records.processed)} processed, ${fmtInt(st.records.invalid)} invalid`);
    add('publishing', `${fmtInt(st.publish.pending)} rows waiting, ${fmtInt(st.publish.published)} datums published, ` +
      `last flush ${st.publish.last_flush || 'never'}`);
    if (st.publish.last_error) add('last publish error', `${st.publish.last_error.errorCode} at ${st.publish.last_error.at}: ${st.publish.last_error.message}`);
    if (st.storage) add('storage', `${st.storage.errorCode} since ${st.storage.at}: ${st.storage.message}`);
    add('queue consumer', st.consumer ? `${st.consumer.queue_url}: ${fmtInt(st.consumer.received)} received` +
      (st.consumer.last_error ? `, last error ${JSON.stringify(st.consumer.last_error)}` : '') : 'off');
    for (const [code, n] of Object.entries(st.errors || {})) add(code, fmtInt(n));
    if (st.cost && typeof st.cost === 'object') {
      for (const [k, v] of Object.entries(st.cost))
        add('cost: ' + k, typeof v === 'number' ? fmtInt(v) : Array.isArray(v) ? v.join(', ') || 'none' : JSON.stringify(v));
    } else add('cost', 'no prices');
  }

  let timer = null;
  async function refresh() {
    clearTimeout(timer);
    const [span, step] = RANGES[range.value];
    const to = Math.floor(Date.now() / 1000 / step) * step + step;
    const from = to - span;
    const n = span / step;
    // Each series is its own group_by=minute query, filtered to its key: a window holds at most
    // span/60 rows per query, under /aggregates' row cap even over 7 days.
    const q = (g, k, v) => `/aggregates?group_by=${g}&from=${iso(from)}&to=${iso(to)}` +
      (k ? `&${k}=${encodeURIComponent(v)}` : '');
    try {
      const [types, models, matrix, total, st] = await Promise.all([
        getJSON(q('profile_type')), getJSON(q('model_id')), getJSON(q('source_region,inference_region')),
        getJSON(q('minute')), getJSON('/status')]);
      pricesOff = Boolean(st.cost && st.cost.prices === false);
      const priced = hasCost(total.totals);
      const attrKeys = (st.attribution && Array.isArray(st.attribution.keys)) ? st.attribution.keys : [];
      const attrRows = await Promise.all(attrKeys.map((k) => getJSON(q('attr.' + encodeURIComponent(k)))));
      const typeKeys = types.rows.map((r) => r.profile_type);
      const modelKeys = ranked(models.rows, 'model_id').slice(0, TOP_MODELS);
      const [typeRows, modelRows] = await Promise.all([
        Promise.all(typeKeys.map((k) => getJSON(q('minute', 'profile_type', k)))),
        Promise.all(modelKeys.map((k) => getJSON(q('minute', 'model_id', k))))]);
      const series = (keys, answers) => keys.map((k, i) =>
        Object.assign({ label: k }, bucketed(answers[i].rows, from, step, n, priced)));
      const byModel = series(modelKeys, modelRows);
      if (models.rows.length > TOP_MODELS) {
        // The rest of the models: everything minus the ones drawn, bucket by bucket.
        const other = Object.assign({ label: 'other' }, bucketed(total.rows, from, step, n, priced));
        for (const s of byModel) {
          for (let i = 0; i < n; i++) {
            other.tokens[i] -= s.tokens[i];
            other.invocations[i] -= s.invocations[i];
            if (priced) other.cost[i] = Math.round((other.cost[i] - s.cost[i]) * 1e9) / 1e9;
          }
        }
        byModel.push(other);
      }
      const x = Array.from({ length: n }, (_, i) => from + i * step);
      const charts = {
        profile_type: { x, priced, series: series(typeKeys, typeRows).sort(byLabel) },
        model_id: { x, priced, series: byModel.sort(byLabel) },
      };
      for (const g of GROUPS) for (const m of METRICS) drawChart(g, m, charts[g]);
      drawMatrix(matrix.rows);
      drawModels(models.rows);
      drawAttr(attrKeys, attrRows);
      const tot = models.totals;
      tile('t-invocations', fmtInt(tot.invocations), tot.invocations);
      tile('t-tokens', fmtInt(tokensOf(tot)), tokensOf(tot));
      tile('t-cost', hasCost(tot) ? fmtUsd(tot.cost_usd) : 'no prices', hasCost(tot) ? tot.cost_usd : '');
      drawStatus(st);
      Object.assign(state, { from: iso(from), to: iso(to), step, charts, totals: tot, status: st });
      $('error').hidden = true;
      $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
      state.updates++;
    } catch (e) {
      $('error').textContent = e.message;
      $('error').hidden = false;
      $('state').textContent = 'unreachable';
      $('state').className = 'badge down';
    }
    timer = setTimeout(refresh, REFRESH_MS);
  }

  range.addEventListener('change', () => {
    frag.set('range', range.value);
    history.replaceState(null, '', '#' + frag);
    refresh();
  });
  let resizing = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => {
      for (const [id, u] of Object.entries(state.plots))
        u.setSize({ width: Math.max(300, $('c-' + id).clientWidth), height: 240 });
    }, 100);
  });
  refresh();
})();
