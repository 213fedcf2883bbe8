// Seeds bench/dashboard.py's big queue with Node BullMQ itself (port from QB_REDIS_PORT, no default):
//   node seed_dashboard.js <queue> <waiting> <failed> <completed>
// Adds completed + failed jobs with Queue.addBulk (ids 1 .. completed+failed), runs a Node Worker
// until the first `completed` have completed and the next `failed` have failed for good (attempts: 3,
// exponential backoff of 2 ms: BullMQ's own retries, stack traces and metrics), closes it, then adds
// the `waiting` jobs. Prints one JSON line with the timings.
const { Queue, Worker } = require('bullmq');

const [name, nWait, nFailed, nCompleted] = [process.argv[2], ...process.argv.slice(3, 6).map(Number)];
const connection = { host: '127.0.0.1', port: Number(process.env.QB_REDIS_PORT) };
const TEMPLATES = ['password-reset', 'welcome', 'invoice', 'weekly-digest', 'order-shipped'];
const opts = { attempts: 3, backoff: { type: 'exponential', delay: 2 } };

function data(i) {
  return {
    to: `user${i}@example.com`, template: TEMPLATES[i % TEMPLATES.length], locale: 'en',
    vars: { name: `User ${i}`, link: `https://app.example.com/t/${i.toString(16).padStart(8, '0')}`, account: 10000 + (i % 977) },
    campaign: `cmp-${i % 37}`,
  };
}

class DeliveryError extends Error {}

// Five failure kinds, as a mailer's handler would meet them (Node's own stack traces).
function send(job) {
  const i = Number(job.id);
  if (i <= nCompleted) {
    return { messageId: `<${i.toString(16).padStart(8, '0')}.${job.timestamp}@mail.example.com>`, accepted: [job.data.to], rejected: [] };
  }
  switch (i % 5) {
    case 0: throw new DeliveryError(`SMTP relay 127.0.0.1:2525 refused the connection; mail to ${job.data.to} not sent`);
    case 1: return JSON.parse('{"subject": "Invoice {number}", "body": ');
    case 2: throw new TypeError(`Cannot read properties of undefined (reading 'link') in template ${job.data.template}`);
    case 3: throw new Error(`connect ECONNREFUSED 127.0.0.1:8025 (provider API, mail to ${job.data.to})`);
    default: throw new RangeError(`template ${job.data.template}/${job.data.locale} not found`);
  }
}

async function addRange(q, first, last) {
  for (let s = first; s <= last; s += 1000) {
    const jobs = [];
    for (let i = s; i <= Math.min(last, s + 999); i++) jobs.push({ name: 'send', data: data(i), opts });
    await q.addBulk(jobs);
  }
}

async function main() {
  const q = new Queue(name, { connection });
  await q.waitUntilReady();
  const t0 = performance.now();
  await addRange(q, 1, nCompleted + nFailed);
  const added = performance.now();
  let done = 0;
  let failed = 0;
  await new Promise((resolve) => {
    const worker = new Worker(name, async (job) => send(job), {
      connection, concurrency: 100, metrics: { maxDataPoints: 1440 },
    });
    const check = () => { if (done === nCompleted && failed === nFailed) worker.close().then(resolve); };
    worker.on('completed', () => { done++; check(); });
    worker.on('failed', (job) => { if (job && job.attemptsMade >= 3) { failed++; check(); } });
    if (nCompleted + nFailed === 0) worker.close().then(resolve);
  });
  const worked = performance.now();
  await addRange(q, nCompleted + nFailed + 1, nCompleted + nFailed + nWait);
  console.log(JSON.stringify({ add_s: (added - t0 + performance.now() - worked) / 1000, work_s: (worked - added) / 1000 }));
  await q.close();
}

main().catch((e) => { console.error(e); process.exit(1); });
