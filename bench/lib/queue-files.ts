// A large queue written straight into a data_dir in the spool format
// (test/helpers/spool-files.ts: no fsync, no daemon), by several worker
// threads at once, each a range of ids: a million messages in minutes.
import os from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { writeQueueFiles } from '../../test/helpers/spool-files.js';

interface Job { readonly queueFiles: true; readonly dataDir: string; readonly count: number; readonly at: number; readonly deferred: boolean }

/** `count` messages of about 1 KB (deferred: with a state file, next attempt in an hour; else due now). */
export async function writeQueue(dataDir: string, count: number, deferred: boolean, workers = Math.max(2, os.cpus().length * 2)): Promise<void> {
  const per = Math.ceil(count / workers);
  const base = Date.now() - 7_200_000 - count; // one id per millisecond, all in the past
  await Promise.all(Array.from({ length: workers }, (_, k) => {
    const job: Job = { queueFiles: true, dataDir, count: Math.max(0, Math.min(per, count - k * per)), at: base + k * per, deferred };
    if (!job.count) return undefined;
    return new Promise<void>((resolve, reject) => {
      const w = new Worker(new URL(import.meta.url), { workerData: job });
      w.once('error', reject);
      w.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`queue writer exited with ${code}`))));
    });
  }));
}

if (!isMainThread && (workerData as Job | undefined)?.queueFiles) {
  const job = workerData as Job;
  writeQueueFiles(job.dataDir, job.count, { deferred: job.deferred, at: job.at });
  parentPort?.close();
}
