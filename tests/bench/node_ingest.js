// node_ingest.js: what the original Lambda did with a log object (zlib gunzip + readline +
// JSON.parse per line, summing tokens), as the benchmark's Node.js reference.
// usage: node node_ingest.js FILE.json.gz  -> prints the totals as JSON
'use strict';
const fs = require('fs');
const zlib = require('zlib');
const readline = require('readline');

const totals = { invocations: 0, input_tokens: 0, output_tokens: 0,
                 cache_read_input_tokens: 0, cache_write_input_tokens: 0 };
const rl = readline.createInterface({
  input: fs.createReadStream(process.argv[2]).pipe(zlib.createGunzip()),
  crlfDelay: Infinity,
});
rl.on('line', (line) => {
  if (!line.trim()) return;
  const r = JSON.parse(line);
  totals.invocations += 1;
  totals.input_tokens += r.input?.inputTokenCount ?? 0;
  totals.output_tokens += r.output?.outputTokenCount ?? 0;
  totals.cache_read_input_tokens += r.input?.cacheReadInputTokenCount ?? 0;
  totals.cache_write_input_tokens += r.input?.cacheWriteInputTokenCount ?? 0;
});
rl.on('close', () => console.log(JSON.stringify(totals)));
