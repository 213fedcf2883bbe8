#!/usr/bin/env node
// Real BullMQ (pinned in package.json): call Queue and Job methods by name, for the Python interop
// tests that compare an API's answers with ours (bullmq_cli.js has the workers and producers).
//
// Usage: node bullmq_calls.js --redis URL --queue NAME [--prefix bull]
//   stdin: JSON array of calls, each {"queue": "getRateLimitTtl", "args": [...]} or
//          {"job": "<id>", "call": "changePriority", "args": [...]} (Job.fromId, then the method)
//   stdout: one JSON line {"results": [r1, r2, ...]}; a call that throws answers {"error": "message"}
//           in its place, and the calls after it still run. A Job method's result is the job's
//           fields after the call ({id, data, opts, priority, delay, state}).
'use strict';

const { parseArgs } = require('node:util');
const { Queue, Job } = require('bullmq');

async function readStdin() {
  let text = '';
  process.stdin.setEncoding('utf8');
  for await (const chunk of process.stdin) text += chunk;
  return text;
}

async function main() {
  const { values } = parseArgs({
    options: { redis: { type: 'string' }, queue: { type: 'string' }, prefix: { type: 'string', default: 'bull' } },
  });
  if (!values.redis || !values.queue) throw new Error('--redis URL and --queue NAME are required');
  const calls = JSON.parse(await readStdin());
  const queue = new Queue(values.queue, { connection: { url: values.redis }, prefix: values.prefix });
  const results = [];
  try {
    await queue.waitUntilReady();
    for (const c of calls) {
      try {
        if (c.queue) {
          const value = await queue[c.queue](...(c.args || []));
          results.push(value === undefined ? null : value);
        } else {
          const job = await Job.fromId(queue, c.job);
          if (!job) { results.push({ error: `no job ${c.job}` }); continue; }
          await job[c.call](...(c.args || []));
          const after = await Job.fromId(queue, c.job);
          results.push(after && { id: after.id, data: after.data, opts: after.opts, priority: after.priority,
                                  delay: after.delay, progress: after.progress, returnvalue: after.returnvalue,
                                  failedReason: after.failedReason, stacktrace: after.stacktrace,
                                  attemptsMade: after.attemptsMade, state: await after.getState() });
        }
      } catch (err) {
        results.push({ error: String(err && err.message ? err.message : err) });
      }
    }
  } finally {
    await queue.close();
  }
  process.stdout.write(JSON.stringify({ results }) + '\n');
}

main().then(() => process.exit(0), (err) => {
  process.stdout.write(JSON.stringify({ error: String(err && err.message ? err.message : err) }) + '\n');
  process.exit(1);
});
