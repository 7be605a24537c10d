// The reference side of tokenizer_vs_reference.sh: times the npm package gpt-3-encoder
// (GPT-2's original algorithm ported to JavaScript) on a file, whole or paragraph by
// paragraph (pieces ending at blank lines, as bench_tokenizer --paragraphs cuts them),
// and writes its ids so the script can check that both implementations agree.
// usage: node gpt3_encoder_bench.js FILE whole|paragraphs IDS_OUT
'use strict';
const fs = require('fs');
const { encode } = require('gpt-3-encoder');

const [file, mode, idsOut] = process.argv.slice(2);
const text = fs.readFileSync(file, 'utf8');
const bytes = Buffer.byteLength(text, 'utf8');
const parts = mode === 'paragraphs' ? text.split(/(?<=\n\n)/) : [text];
const t0 = process.hrtime.bigint();
let ids = [];
for (const p of parts) {
  const e = encode(p);
  for (const id of e) ids.push(id);
}
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
fs.writeFileSync(idsOut, ids.join(' ') + '\n');
console.log(`gpt-3-encoder encode file=${file} mode=${mode} bytes=${bytes} ids=${ids.length} ` +
            `s=${secs.toFixed(4)} MBps=${(bytes / 1e6 / secs).toFixed(3)}`);
