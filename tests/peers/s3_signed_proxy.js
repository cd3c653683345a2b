// s3_signed_proxy.js: s3rver (an S3 we did not write) behind a front door that checks every
// request's SigV4 signature with AWS's own signer (@smithy/signature-v4), since s3rver itself
// does not. Valid requests are forwarded; others get 403 SignatureDoesNotMatch as S3 sends it.
//
// Credentials: S3RVER / S3RVER.
// usage: node s3_signed_proxy.js --dir DIR --port-file FILE [--bucket NAME]
//        [--seed FILE (--seed-prefix PREFIX --seed-copies N)...]
// Seeded keys are PREFIX + a 5-digit number + ".json.gz".
// Writes "FRONT_PORT BACKEND_PORT" to the port file once both listen. Logs one line per
// request on stdout: "verified METHOD PATH?QUERY" or "rejected ...".
'use strict';
const http = require('http');
const fs = require('fs');
const S3rver = require('s3rver');
const { SignatureV4 } = require('@smithy/signature-v4');
const { Sha256 } = require('@aws-crypto/sha256-js');

// Flags may repeat (--seed-prefix A --seed-prefix B): each keeps its values in order.
const args = {}, multi = {};
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].slice(2);
  args[k] = process.argv[i + 1];
  (multi[k] = multi[k] || []).push(process.argv[i + 1]);
}
// s3rver only knows its own key (S3RVER/S3RVER); the front door checks the same pair.
const CREDS = { S3RVER: 'S3RVER' };
const bucket = args.bucket || 'logs';

function s3Error(res, status, code, message) {
  res.writeHead(status, { 'content-type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`);
}

// Recomputes the signature of an incoming request from the headers it signed.
async function verify(req, body) {
  const auth = req.headers.authorization || '';
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return 'no or malformed Authorization header';
  const [, akid, , region, service, signedList, signature] = m;
  if (!(akid in CREDS)) return 'unknown access key';
  const signed = signedList.split(';');
  const headers = {};
  for (const h of signed) {
    if (req.headers[h] === undefined) return `signed header ${h} missing`;
    headers[h] = req.headers[h];
  }
  const amzDate = req.headers['x-amz-date'];
  const d = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate || '');
  if (!d) return 'bad x-amz-date';
  const signingDate = new Date(Date.UTC(+d[1], d[2] - 1, +d[3], +d[4], +d[5], +d[6]));
  const [rawPath, rawQuery = ''] = req.url.split(/\?(.*)/s);
  const query = {};
  for (const part of rawQuery.split('&')) {
    if (!part) continue;
    const [k, v = ''] = part.split(/=(.*)/s);
    query[decodeURIComponent(k)] = decodeURIComponent(v);
  }
  const signer = new SignatureV4({
    credentials: { accessKeyId: akid, secretAccessKey: CREDS[akid],
                   sessionToken: headers['x-amz-security-token'] },
    region, service, sha256: Sha256,
    uriEscapePath: service !== 's3', // S3 signs the path as sent; others double-encode
    applyChecksum: false,
  });
  const out = await signer.sign(
    { method: req.method, protocol: 'http:', hostname: req.headers.host.split(':')[0],
      path: rawPath, query, headers, body: body.length ? body : undefined },
    { signingDate, signingRegion: region, signingService: service });
  const want = /Signature=([0-9a-f]{64})/.exec(out.headers.authorization)[1];
  return want === signature ? null : `signature mismatch (AWS signer: ${want})`;
}

async function main() {
  const backend = new S3rver({ address: '127.0.0.1', port: 0, silent: true,
                               directory: args.dir, configureBuckets: [{ name: bucket }] });
  const { port: bport } = await backend.run();

  const front = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      let why;
      try { why = await verify(req, body); } catch (e) { why = `verifier error: ${e.message}`; }
      if (why) {
        console.log(`rejected ${req.method} ${req.url}: ${why}`);
        return s3Error(res, 403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.');
      }
      console.log(`verified ${req.method} ${req.url}`);
      const up = http.request({ host: '127.0.0.1', port: bport, method: req.method, path: req.url,
                                headers: req.headers }, (ur) => {
        res.writeHead(ur.statusCode, ur.headers);
        ur.pipe(res);
      });
      up.on('error', (e) => s3Error(res, 502, 'BadGateway', e.message));
      up.end(body);
    });
  });
  await new Promise((r) => front.listen(0, '127.0.0.1', r));

  if (args.seed) {
    // Seed through the backend directly, signed by AWS's signer (s3rver wants a header).
    const data = fs.readFileSync(args.seed);
    const signer = new SignatureV4({ credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
                                     region: 'us-east-1', service: 's3', sha256: Sha256,
                                     uriEscapePath: false });
    const put = async (prefix, i) => {
      const key = `${prefix}${String(i).padStart(5, '0')}.json.gz`;
      // RFC 3986 per segment (encodeURIComponent leaves !'()* alone, S3 wants them encoded).
      const enc = (x) => encodeURIComponent(x).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
      const path = '/' + bucket + '/' + key.split('/').map(enc).join('/');
      const signed = await signer.sign({ method: 'PUT', protocol: 'http:', hostname: '127.0.0.1',
        path, query: {}, headers: { host: `127.0.0.1:${bport}`, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
        'content-length': String(data.length) }, body: data });
      await new Promise((resolve, reject) => {
        const r = http.request({ host: '127.0.0.1', port: bport, method: 'PUT', path, headers: signed.headers },
          (rs) => { rs.resume(); rs.on('end', () => rs.statusCode === 200 ? resolve() : reject(new Error(`seed ${rs.statusCode}`))); });
        r.on('error', reject);
        r.end(data);
      });
    };
    const prefixes = multi['seed-prefix'] || [];
    for (let p = 0; p < prefixes.length; p++) {
      const n = +((multi['seed-copies'] || [])[p] || 1);
      for (let i = 0; i < n; i += 25)
        await Promise.all(Array.from({ length: Math.min(25, n - i) }, (_, k) => put(prefixes[p], i + k)));
    }
  }
  fs.writeFileSync(args['port-file'], `${front.address().port} ${bport}\n`);
  const stop = () => { front.close(); backend.close().finally(() => process.exit(0)); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
main().catch((e) => { console.error(e); process.exit(1); });
