// Node BullMQ adapter (from ../shared/bench; port from QB_REDIS_PORT, no default): node qb.js enqueue|worker|produce|limit|schedule [--mode single|bulk]
// [--n N] [--chunk C] [--rate R] [--conc C]. Same record format as the
// Python adapters (see py/qbcommon.py): 32 bytes per finished job.
const fs = require('fs');
const { Queue, Worker } = require('bullmq');

const args = { mode: 'single', n: 20000, chunk: 1000, rate: 200, conc: 1 };
const argv = process.argv.slice(2);
const cmd = argv[0];
for (let i = 1; i < argv.length; i += 2) args[argv[i].replace(/^--/, '')] = argv[i + 1];
['n', 'chunk', 'rate', 'conc'].forEach((k) => (args[k] = Number(args[k])));

const connection = { host: '127.0.0.1', port: Number(process.env.QB_REDIS_PORT) };
const QUEUE = 'qb';
const now = () => (performance.timeOrigin + performance.now()) / 1000; // seconds, us resolution
const payload = (i) => ({ i, t: now(), pad: 'x'.repeat(58) });
const emit = (o) => console.log('QBRESULT ' + JSON.stringify(o));

let fd = null;
function mark(tEnq) {
  if (fd === null) fd = fs.openSync(process.env.QB_DONE_FILE || 'done.log', 'a');
  const t = now();
  fs.writeSync(fd, t.toFixed(6).padStart(17) + ' ' + (t - tEnq).toFixed(6).padStart(13) + '\n');
}

async function enqueue() {
  const q = new Queue(QUEUE, { connection });
  await q.waitUntilReady();
  const t0 = performance.now();
  if (args.mode === 'single') {
    for (let i = 0; i < args.n; i++) await q.add('noop', payload(i));
  } else {
    for (let s = 0; s < args.n; s += args.chunk) {
      const jobs = [];
      for (let i = s; i < Math.min(args.n, s + args.chunk); i++) jobs.push({ name: 'noop', data: payload(i) });
      await q.addBulk(jobs);
    }
  }
  emit({ seconds: (performance.now() - t0) / 1000, n: args.n });
  await q.close();
}

async function produce() {
  const q = new Queue(QUEUE, { connection });
  await q.waitUntilReady();
  const t0 = performance.now();
  for (let i = 0; i < args.n; i++) {
    const delay = t0 + (i * 1000) / args.rate - performance.now();
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    await q.add('noop', payload(i));
  }
  emit({ seconds: (performance.now() - t0) / 1000, n: args.n });
  await q.close();
}

async function worker() {
  const w = new Worker(QUEUE, async (job) => mark(job.data.t), { connection, concurrency: args.conc });
  process.on('SIGINT', async () => { await w.close(); process.exit(0); });
}

async function limit() {
  const q = new Queue(QUEUE, { connection });
  await q.setGlobalRateLimit(args.rate, 1000);
  await q.close();
}

async function schedule() {
  const q = new Queue(QUEUE, { connection });
  await q.upsertJobScheduler('bench-every', { every: 1000 }, { name: 'noop', data: payload(0) });
  await q.close();
}

({ enqueue, produce, worker, limit, schedule })[cmd]().catch((e) => { console.error(e); process.exit(1); });
