#!/usr/bin/env node
// Next fire times of cron patterns as BullMQ 6.7.0 computes them (its getNextMillis, which uses
// the cron-parser it ships), for tests/interop/test_scheduler_cron.py.
//
// Usage: node cron_next.js < cases.json
//   stdin: JSON array of {pattern, tz?, from, n}: from is ms since the epoch.
//   stdout: one JSON line {"times": [[ms, ...], ...]}: per case the n next fire times, each
//   computed from the one before, as a worker computes a scheduler's next iteration.
'use strict';

const { getNextMillis } = require('bullmq/dist/cjs/classes/job-scheduler');

let text = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { text += chunk; });
process.stdin.on('end', () => {
  const cases = JSON.parse(text);
  const times = cases.map((c) => {
    const got = [];
    let at = c.from;
    for (let i = 0; i < c.n; i += 1) {
      const opts = { pattern: c.pattern };
      if (c.tz) opts.tz = c.tz;
      at = getNextMillis(at, opts);
      if (at === undefined) break;
      got.push(at);
    }
    return got;
  });
  process.stdout.write(JSON.stringify({ times }) + '\n');
});
