/**
 * Worker-thread entry for pool.ts: runs the chunks of seeds it is sent and posts one summary
 * per chunk. Owns nothing else; it must never choose seeds itself or print.
 */
import { parentPort } from 'node:worker_threads';
import { summarize } from './pool.js';
import type { ChunkRequest } from './pool.js';
import { runSeed } from './runner.js';

const port = parentPort;
if (port === null) throw new Error('raft/sim/worker.js must run in a worker thread');

port.on('message', (req: ChunkRequest) => {
  const results = [];
  for (let seed = req.from; seed < req.from + req.count; seed++) {
    results.push(runSeed({ seed, steps: req.steps, ...(req.bugs === undefined ? {} : { bugs: req.bugs }) }));
  }
  port.postMessage(summarize(results, req.maxFailures));
});
