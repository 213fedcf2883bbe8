// bull-board's Express server on the bench's Redis (port from QB_REDIS_PORT, no default):
//   node serve.js <http port> <queue> [<queue> ...]
// Mounted at /board. Each request's server time (ms, process.hrtime from the request's arrival
// to the response's 'finish') is printed as "SEQ <X-Bench-Seq header> <ms>".
const express = require('express');
const { Queue } = require('bullmq');
const { createBullBoard } = require('@bull-board/api');
const { BullMQAdapter } = require('@bull-board/api/bullMQAdapter');
const { ExpressAdapter } = require('@bull-board/express');

const [port, ...names] = process.argv.slice(2);
const connection = { host: '127.0.0.1', port: Number(process.env.QB_REDIS_PORT) };
const serverAdapter = new ExpressAdapter();
serverAdapter.setBasePath('/board');
createBullBoard({ queues: names.map((n) => new BullMQAdapter(new Queue(n, { connection }))), serverAdapter });

const app = express();
app.use((req, res, next) => {
  const t0 = process.hrtime.bigint();
  res.on('finish', () => {
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    console.log(`SEQ ${req.headers['x-bench-seq'] || '-'} ${ms.toFixed(3)}`);
  });
  next();
});
app.use('/board', serverAdapter.getRouter());
app.get('/healthz', (req, res) => res.send('ok'));
app.listen(Number(port), '127.0.0.1', () => console.log('READY'));
