#!/usr/bin/env node
// Real legacy Bull (npm bull, pinned in package.json) driven from the Python interop tests
// (tests/interop/test_bull.py), as bullmq_cli.js drives BullMQ.
//
// Usage: node bull_cli.js COMMAND --redis URL --queue NAME [--prefix bull] [options]
//
//   add        stdin: JSON array of {name, data, opts}; Queue.add for each   -> {"ids":["1","2"]}
//   counts     Queue.getJobCounts()                                          -> {"waiting":0,"paused":0,...}
//   is-paused  Queue.isPaused() (global)                                     -> {"paused":false}
//   pause      Queue.pause() (global, Bull's own)                            -> {"paused":true}
//   resume     Queue.resume() (global, Bull's own)                           -> {"paused":false}
//   job        --id ID: Bull's fields of the job and Job.getState()          -> {"id":"1",...,"state":"failed"}
//              or {"id":"1","state":null} when there is no such job
//   work       Queue.process: appends {id,name,data,attemptsMade} as one JSON line per call to --out FILE
//              --concurrency N (1)  --fail-names a,b (throw for those names)
//              --expect N (stop after N recorded calls; otherwise run until SIGTERM/SIGINT)
//              prints {"ready":true} once the worker runs, {"done":true,"recorded":N} after closing.
//
// Every command prints exactly one JSON line on stdout (work: the two above). On an error it
// prints {"error":"message"} on stdout, the stack on stderr, and exits 1. Node >= 20, no network but --redis.
'use strict';

const fs = require('node:fs');
const { parseArgs } = require('node:util');
const Queue = require('bull');

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function readStdin() {
  const text = fs.readFileSync(0, 'utf8');
  return text.trim() ? JSON.parse(text) : null;
}

const FIELDS = ['id', 'name', 'data', 'opts', 'delay', 'timestamp', 'attemptsMade', 'failedReason', 'stacktrace',
  'returnvalue', 'processedOn', 'finishedOn'];

async function main() {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      redis: { type: 'string' }, queue: { type: 'string' }, prefix: { type: 'string', default: 'bull' },
      id: { type: 'string' }, out: { type: 'string' }, concurrency: { type: 'string', default: '1' },
      'fail-names': { type: 'string', default: '' }, expect: { type: 'string' },
    },
  });
  const command = positionals[0];
  if (!values.redis || !values.queue) throw new Error('--redis and --queue are required');
  const queue = new Queue(values.queue, values.redis, { prefix: values.prefix });
  await queue.isReady();
  try {
    if (command === 'add') {
      const ids = [];
      for (const spec of readStdin() || []) {
        const job = spec.name ? await queue.add(spec.name, spec.data || {}, spec.opts || {})
          : await queue.add(spec.data || {}, spec.opts || {});
        ids.push(String(job.id));
      }
      out({ ids });
    } else if (command === 'counts') {
      out(await queue.getJobCounts());
    } else if (command === 'is-paused') {
      out({ paused: await queue.isPaused() });
    } else if (command === 'pause') {
      await queue.pause();
      out({ paused: await queue.isPaused() });
    } else if (command === 'resume') {
      await queue.resume();
      out({ paused: await queue.isPaused() });
    } else if (command === 'job') {
      const job = await queue.getJob(values.id);
      if (!job) {
        out({ id: values.id, state: null });
      } else {
        const fields = {};
        for (const f of FIELDS) fields[f] = job[f] === undefined ? null : job[f];
        fields.id = String(job.id);
        fields.state = await job.getState();
        out(fields);
      }
    } else if (command === 'work') {
      await work(queue, values);
    } else {
      throw new Error(`unknown command ${JSON.stringify(command)}`);
    }
  } finally {
    await queue.close();
  }
}

async function work(queue, values) {
  const failNames = new Set(values['fail-names'].split(',').filter(Boolean));
  const expect = values.expect === undefined ? null : Number(values.expect);
  let recorded = 0;
  let finish;
  const finished = new Promise((resolve) => { finish = resolve; });
  const handler = async (job) => {
    fs.appendFileSync(values.out, JSON.stringify({ id: String(job.id), name: job.name, data: job.data,
      attemptsMade: job.attemptsMade }) + '\n');
    recorded += 1;
    if (expect !== null && recorded >= expect) setImmediate(finish);
    if (failNames.has(job.name)) throw new Error(`failed on purpose: ${job.name}`);
    return { ok: true, id: String(job.id) };
  };
  queue.process('*', Number(values.concurrency), handler);
  for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => finish());
  out({ ready: true });
  await finished;
  await queue.close();  // lets active jobs finish
  out({ done: true, recorded });
}

main().catch((err) => {
  out({ error: String(err && err.message ? err.message : err) });
  process.stderr.write(String(err && err.stack ? err.stack : err) + '\n');
  process.exit(1);
});
