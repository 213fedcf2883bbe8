#!/usr/bin/env node
// Real BullMQ (pinned in package.json) driven from the Python interop tests.
//
// Usage: node bullmq_cli.js COMMAND --redis URL --queue NAME [--prefix bull] [options]
//
//   add      stdin: JSON array of {name, data, opts}; Queue.addBulk     -> {"ids":["1","2"]}
//            (opts as Node takes them, deduplication: {id, ttl, extend, replace, keepLastIfActive} too;
//            a deduplicated add answers the id of the job holding the slot)
//   counts   Queue.getJobCounts over every state                        -> {"waiting":0,...}
//   pause    Queue.pause()                                              -> {"paused":true}
//   resume   Queue.resume()                                             -> {"paused":false}
//   job      --id ID: the job's fields plus its state (getState)        -> {"id":"1",...,"state":"completed"}
//                     or {"id":"1","state":null} when there is no such job
//   jobs     stdin: JSON array of ids; `job` for each, one Node start   -> {"jobs":[{...},{...}]}
//   rate-limit --max N --duration MS: Queue.setGlobalRateLimit            -> {"ok":true}
//   no-rate-limit  Queue.removeGlobalRateLimit                           -> {"ok":true}
//   rate-limit-ttl Queue.getRateLimitTtl()                               -> {"ttl":1234}
//   metrics  --type completed|failed: Queue.getMetrics(type)            -> {"meta":{...},"data":[...],"count":N}
//   upsert-scheduler  stdin: {id, repeat, name?, data?, opts?}; Queue.upsertJobScheduler
//                     -> {"id":"repeat:<id>:<ms>","delay":ms} (the first iteration's job)
//   remove-scheduler  --id ID: Queue.removeJobScheduler                  -> {"removed":true}
//   schedulers        Queue.getJobSchedulers()                          -> {"schedulers":[{key,name,next,...}]}
//   dedup-job-id      --id ID: Queue.getDeduplicationJobId(ID)          -> {"jobId":"1"} or {"jobId":null}
//   remove-dedup-key  --id ID: Queue.removeDeduplicationKey(ID)         -> {"removed":1}
//   flow     stdin: a flow ({name, queueName, data, opts, children}) or a JSON array of flows;
//            FlowProducer.add / addBulk (no --queue needed)  -> {"tree":{id,name,queueName,children:[...]}}
//            or {"trees":[...]}
//   get-flow --id ID: FlowProducer.getFlow({id, queueName: --queue})
//            -> {"tree":{id,name,queueName,state,returnvalue,children:[...]}} or {"tree":null}
//   deps     --id ID: the job's getDependenciesCount(), getChildrenValues() and
//            getIgnoredChildrenFailures()  -> {"counts":{...},"values":{...},"ignored":{...}}
//   work     Worker that appends {id,name,data,attemptsMade,startedAt} (startedAt in ms) as one JSON
//            line per processor call to --out FILE.
//            --concurrency N (1)  --sleep-ms MS (0; a job whose data has an integer sleepMs sleeps that)
//            --fail-names a,b (throw an Error for those names)
//            --expect N (stop after N recorded calls; otherwise run until SIGTERM/SIGINT)
//            --stalled-interval MS  --lock-duration MS  --max-stalled-count N
//            --drain-delay S (BullMQ's drainDelay, seconds: how long an idle worker blocks on the
//            marker before it polls anyway; 5 by default)
//            --limiter-max N --limiter-duration MS (the Worker option limiter: {max, duration})
//            --metrics N (the Worker option metrics: {maxDataPoints: N}; none by default)
//            --record-children (each record also has childrenValues: getChildrenValues(), and
//            ignored: getIgnoredChildrenFailures(), read by the processor before it returns)
//            prints {"ready":true} once the worker runs, and {"done":true,"recorded":N} after a
//            graceful close (active jobs are allowed to finish first).
//
// Queue commands (add, counts, pause, resume, job, jobs) take --max-len-events N: the Queue's
// streams.events.maxLen, which every Node Queue writes to meta `opts.maxLenEvents` (default 10000).
//
// Every command prints exactly one JSON line on stdout (work: the two above). On an error it prints
// {"error":"message"} on stdout, the stack on stderr, and exits 1. Node >= 20, no network but --redis.
'use strict';

const fs = require('node:fs');
const { parseArgs } = require('node:util');
const { Queue, Worker, Job, FlowProducer } = require('bullmq');

const STATES = ['waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed', 'paused', 'waiting-children'];

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function int(value, flag) {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} must be a non-negative integer, got ${JSON.stringify(value)}`);
  return n;
}

function parse(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      redis: { type: 'string' },
      queue: { type: 'string' },
      prefix: { type: 'string', default: 'bull' },
      id: { type: 'string' },
      out: { type: 'string' },
      concurrency: { type: 'string', default: '1' },
      'sleep-ms': { type: 'string', default: '0' },
      'fail-names': { type: 'string', default: '' },
      expect: { type: 'string' },
      'stalled-interval': { type: 'string' },
      'lock-duration': { type: 'string' },
      'max-stalled-count': { type: 'string' },
      'max-len-events': { type: 'string' },
      'drain-delay': { type: 'string' },
      'limiter-max': { type: 'string' },
      'limiter-duration': { type: 'string' },
      metrics: { type: 'string' },
      max: { type: 'string' },
      duration: { type: 'string' },
      type: { type: 'string', default: 'completed' },
      'record-children': { type: 'boolean', default: false },
    },
  });
  if (positionals.length !== 1) throw new Error('exactly one command expected: add|counts|work|pause|resume|job|jobs|upsert-scheduler|...');
  if (!values.redis) throw new Error('--redis URL is required');
  if (!values.queue && positionals[0] !== 'flow') throw new Error('--queue NAME is required');
  return { command: positionals[0], opts: values };
}

function readStdin() {
  return new Promise((resolve, reject) => {
    let text = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (chunk) => { text += chunk; });
    process.stdin.on('end', () => resolve(text));
    process.stdin.on('error', reject);
  });
}

function connection(opts) {
  // maxRetriesPerRequest: null is what BullMQ requires for workers' blocking calls.
  return { url: opts.redis, maxRetriesPerRequest: null };
}

async function withQueue(opts, fn) {
  const queueOpts = { connection: connection(opts), prefix: opts.prefix };
  const maxLen = int(opts['max-len-events'], '--max-len-events');
  if (maxLen !== undefined) queueOpts.streams = { events: { maxLen } };
  const queue = new Queue(opts.queue, queueOpts);
  try {
    await queue.waitUntilReady();
    return await fn(queue);
  } finally {
    await queue.close();
  }
}

async function add(opts) {
  const jobs = JSON.parse(await readStdin());
  if (!Array.isArray(jobs)) throw new Error('stdin must be a JSON array of {name, data, opts}');
  const added = await withQueue(opts, (queue) =>
    queue.addBulk(jobs.map((j) => ({ name: j.name, data: j.data === undefined ? {} : j.data, opts: j.opts || {} }))));
  out({ ids: added.map((job) => job.id) });
}

async function counts(opts) {
  out(await withQueue(opts, (queue) => queue.getJobCounts(...STATES)));
}

async function pause(opts, paused) {
  await withQueue(opts, (queue) => (paused ? queue.pause() : queue.resume()));
  out({ paused });
}

async function describe(queue, id) {
  const found = await Job.fromId(queue, id);
  if (!found) return { id, state: null };
  const state = await found.getState();
  const fields = found.toJSON();
  return {
    id: found.id,
    name: found.name,
    data: found.data,
    opts: found.opts,
    progress: found.progress,
    returnvalue: found.returnvalue === undefined ? null : found.returnvalue,
    failedReason: found.failedReason === undefined ? null : found.failedReason,
    stacktrace: found.stacktrace || [],
    attemptsMade: found.attemptsMade,
    attemptsStarted: fields.attemptsStarted,
    stalledCounter: fields.stalledCounter,
    timestamp: found.timestamp,
    delay: found.delay,
    priority: found.priority,
    processedOn: found.processedOn === undefined ? null : found.processedOn,
    finishedOn: found.finishedOn === undefined ? null : found.finishedOn,
    state,
  };
}

async function job(opts) {
  if (!opts.id) throw new Error('--id ID is required');
  out(await withQueue(opts, (queue) => describe(queue, opts.id)));
}

async function jobs(opts) {
  const ids = JSON.parse(await readStdin());
  if (!Array.isArray(ids)) throw new Error('stdin must be a JSON array of job ids');
  const found = await withQueue(opts, async (queue) => {
    const all = [];
    for (const id of ids) all.push(await describe(queue, String(id)));
    return all;
  });
  out({ jobs: found });
}

async function upsertScheduler(opts) {
  const spec = JSON.parse(await readStdin());
  const made = await withQueue(opts, (queue) => queue.upsertJobScheduler(
    spec.id, spec.repeat, { name: spec.name, data: spec.data, opts: spec.opts }));
  out({ id: made ? made.id : null, delay: made ? made.delay : null });
}

async function removeScheduler(opts) {
  if (!opts.id) throw new Error('--id ID is required');
  out({ removed: await withQueue(opts, (queue) => queue.removeJobScheduler(opts.id)) });
}

async function schedulers(opts) {
  out({ schedulers: await withQueue(opts, (queue) => queue.getJobSchedulers()) });
}

function nodeOf(node) {
  // FlowProducer's JobNode as plain JSON: ids, names and queues, children in order
  const out = { id: node.job.id, name: node.job.name, queueName: node.job.queueName };
  if (node.children) out.children = node.children.map(nodeOf);
  return out;
}

async function flow(opts) {
  const spec = JSON.parse(await readStdin());
  const producer = new FlowProducer({ connection: connection(opts), prefix: opts.prefix });
  try {
    if (Array.isArray(spec)) out({ trees: (await producer.addBulk(spec)).map(nodeOf) });
    else out({ tree: nodeOf(await producer.add(spec)) });
  } finally {
    await producer.close();
  }
}

async function flowOf(node) {
  const state = await node.job.getState();
  const out = { id: node.job.id, name: node.job.name, queueName: node.job.queueName, state,
    returnvalue: node.job.returnvalue === undefined ? null : node.job.returnvalue,
    failedReason: node.job.failedReason === undefined ? null : node.job.failedReason };
  if (node.children) out.children = await Promise.all(node.children.map(flowOf));
  return out;
}

async function getFlow(opts) {
  if (!opts.id) throw new Error('--id ID is required');
  const producer = new FlowProducer({ connection: connection(opts), prefix: opts.prefix });
  try {
    const tree = await producer.getFlow({ id: opts.id, queueName: opts.queue });
    out({ tree: tree ? await flowOf(tree) : null });
  } finally {
    await producer.close();
  }
}

async function deps(opts) {
  if (!opts.id) throw new Error('--id ID is required');
  out(await withQueue(opts, async (queue) => {
    const found = await Job.fromId(queue, opts.id);
    if (!found) return { counts: null };
    return { counts: await found.getDependenciesCount(), values: (await found.getChildrenValues()) || {},
      ignored: (await found.getIgnoredChildrenFailures()) || {} };
  }));
}

async function work(opts) {
  if (!opts.out) throw new Error('--out FILE is required');
  const failNames = new Set(opts['fail-names'].split(',').filter(Boolean));
  const sleepMs = int(opts['sleep-ms'], '--sleep-ms');
  const expect = int(opts.expect, '--expect');
  const workerOpts = {
    connection: connection(opts),
    prefix: opts.prefix,
    concurrency: Math.max(1, int(opts.concurrency, '--concurrency')),
    autorun: false,
  };
  if (opts['stalled-interval'] !== undefined) workerOpts.stalledInterval = int(opts['stalled-interval'], '--stalled-interval');
  if (opts['lock-duration'] !== undefined) workerOpts.lockDuration = int(opts['lock-duration'], '--lock-duration');
  if (opts['max-stalled-count'] !== undefined) workerOpts.maxStalledCount = int(opts['max-stalled-count'], '--max-stalled-count');
  if (opts['drain-delay'] !== undefined) workerOpts.drainDelay = Math.max(1, int(opts['drain-delay'], '--drain-delay'));
  if (opts['limiter-max'] !== undefined) {
    workerOpts.limiter = { max: int(opts['limiter-max'], '--limiter-max'), duration: int(opts['limiter-duration'], '--limiter-duration') };
  }
  if (opts.metrics !== undefined) workerOpts.metrics = { maxDataPoints: int(opts.metrics, '--metrics') };

  let recorded = 0;
  let closing = null;
  let worker = null;
  const close = () => {
    if (!closing) {
      // Graceful: no new jobs are fetched and active ones finish before close() resolves.
      closing = worker.close().then(() => out({ done: true, recorded }));
    }
    return closing;
  };

  worker = new Worker(opts.queue, async (j) => {
    const record = { id: j.id, name: j.name, data: j.data, attemptsMade: j.attemptsMade, startedAt: Date.now() };
    if (opts['record-children']) {
      record.childrenValues = (await j.getChildrenValues()) || {};
      record.ignored = (await j.getIgnoredChildrenFailures()) || {};
    }
    fs.appendFileSync(opts.out, JSON.stringify(record) + '\n');
    recorded += 1;
    if (expect !== undefined && recorded >= expect) setImmediate(close);
    const jobSleepMs = j.data && Number.isInteger(j.data.sleepMs) ? j.data.sleepMs : sleepMs;
    if (jobSleepMs) await new Promise((resolve) => setTimeout(resolve, jobSleepMs));
    if (failNames.has(j.name)) throw new Error(`failed on purpose: ${j.name}`);
    return { ok: true, id: j.id };
  }, workerOpts);
  worker.on('error', (err) => process.stderr.write(`worker error: ${err && err.stack ? err.stack : err}\n`));

  process.once('SIGTERM', close);
  process.once('SIGINT', close);
  const running = worker.run();
  await worker.waitUntilReady();
  out({ ready: true });
  if (expect === 0) close();
  await running;
  await close();
}

async function main() {
  const { command, opts } = parse(process.argv.slice(2));
  switch (command) {
    case 'add': return add(opts);
    case 'counts': return counts(opts);
    case 'pause': return pause(opts, true);
    case 'resume': return pause(opts, false);
    case 'job': return job(opts);
    case 'jobs': return jobs(opts);
    case 'work': return work(opts);
    case 'flow': return flow(opts);
    case 'get-flow': return getFlow(opts);
    case 'deps': return deps(opts);
    case 'rate-limit':
      await withQueue(opts, (queue) => queue.setGlobalRateLimit(int(opts.max, '--max'), int(opts.duration, '--duration')));
      return out({ ok: true });
    case 'no-rate-limit':
      await withQueue(opts, (queue) => queue.removeGlobalRateLimit());
      return out({ ok: true });
    case 'rate-limit-ttl': return out({ ttl: await withQueue(opts, (queue) => queue.getRateLimitTtl()) });
    case 'metrics': return out(await withQueue(opts, (queue) => queue.getMetrics(opts.type)));
    case 'upsert-scheduler': return upsertScheduler(opts);
    case 'remove-scheduler': return removeScheduler(opts);
    case 'schedulers': return schedulers(opts);
    case 'dedup-job-id':
      return out({ jobId: await withQueue(opts, (queue) => queue.getDeduplicationJobId(opts.id)) });
    case 'remove-dedup-key':
      return out({ removed: await withQueue(opts, (queue) => queue.removeDeduplicationKey(opts.id)) });
    default: throw new Error(`unknown command ${JSON.stringify(command)}: add|counts|work|pause|resume|job|jobs|upsert-scheduler|remove-scheduler|schedulers`);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    out({ error: String(err && err.message ? err.message : err) });
    process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  },
);
