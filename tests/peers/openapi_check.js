// openapi_check.js: validates recorded bmas responses against openapi.yaml with ajv (JSON
// Schema 2020-12, which OpenAPI 3.1 uses), so the spec stays true to the live service.
//
// usage: node openapi_check.js openapi.yaml RESPONSES_DIR
// RESPONSES_DIR holds one pair per response: NAME.meta ("METHOD PATH STATUS CONTENT-TYPE")
// and NAME.body (and NAME.hdr, the headers, checked for those the spec marks required). Prints
// one line per response; exits 1 when any fails, or when a documented route/status is never
// seen (so the test keeps covering the spec).
'use strict';
const fs = require('fs');
const path = require('path');
const YAML = require('yaml');
const Ajv2020 = require('ajv/dist/2020');
const addFormats = require('ajv-formats');

const spec = YAML.parse(fs.readFileSync(process.argv[2], 'utf8'));
const dir = process.argv[3];
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
// Register the spec itself so '#/components/...' refs resolve.
ajv.addSchema({ $id: 'spec', components: spec.components });
const fixRefs = (node) => {
  if (Array.isArray(node)) return node.map(fixRefs);
  if (node && typeof node === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(node))
      out[k] = k === '$ref' && typeof v === 'string' && v.startsWith('#/') ? 'spec' + v : fixRefs(v);
    return out;
  }
  return node;
};
const resolve = (obj) => (obj && obj.$ref ? resolve(obj.$ref.split('/').slice(1).reduce((o, k) => o[k], spec)) : obj);

let failed = 0;
const seen = new Set();
for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.meta')).sort()) {
  const [method, route, status, ctype] = fs.readFileSync(path.join(dir, f), 'utf8').trim().split(' ');
  const body = fs.readFileSync(path.join(dir, f.replace(/\.meta$/, '.body')), 'utf8');
  const op = spec.paths[route] && spec.paths[route][method.toLowerCase()];
  const name = `${method} ${route} ${status} (${f})`;
  // Unknown paths (404) and other methods on known paths (405) have no operation to live in:
  // openapi.yaml says in its description that they answer with an Error body.
  const resp = op ? resolve(op.responses[status])
                  : ['404', '405'].includes(status) ? resolve(spec.components.responses.Error) : null;
  if (!op && !resp) { console.log(`not ok - ${name}: route not in openapi.yaml`); failed++; continue; }
  if (!resp) { console.log(`not ok - ${name}: status not documented`); failed++; continue; }
  seen.add(`${method} ${route} ${status}`);
  const media = resp.content && resp.content[ctype];
  if (!media) { console.log(`not ok - ${name}: content type ${ctype} not documented`); failed++; continue; }
  let data = body;
  if (ctype === 'application/json') {
    try { data = JSON.parse(body); } catch (e) { console.log(`not ok - ${name}: not JSON`); failed++; continue; }
  }
  // Headers the spec marks required (Retry-After on a failure worth retrying) must be there.
  const hdrFile = path.join(dir, f.replace(/\.meta$/, '.hdr'));
  const hdrs = fs.existsSync(hdrFile) ? fs.readFileSync(hdrFile, 'utf8').toLowerCase().split(/\r?\n/) : null;
  const missing = Object.entries(resp.headers || {})
    .filter(([h, spec]) => spec.required && hdrs && !hdrs.some((l) => l.startsWith(h.toLowerCase() + ':')))
    .map(([h]) => h);
  if (missing.length) { console.log(`not ok - ${name}: no ${missing.join(', ')} header`); failed++; continue; }
  const validate = ajv.compile(fixRefs(media.schema));
  if (validate(data)) console.log(`ok - ${name}`);
  else { console.log(`not ok - ${name}: ${ajv.errorsText(validate.errors)}`); failed++; }
}
// Every documented 200 must have been exercised.
for (const [route, ops] of Object.entries(spec.paths))
  for (const [method, op] of Object.entries(ops))
    for (const status of Object.keys(op.responses))
      if (status === '200' && !seen.has(`${method.toUpperCase()} ${route} ${status}`)) {
        console.log(`not ok - ${method.toUpperCase()} ${route} 200 never exercised`);
        failed++;
      }
process.exit(failed ? 1 : 0);
