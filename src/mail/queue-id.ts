// Queue ids: uppercase hex, time-ordered so `ls` and `mailq` list oldest first,
// unique enough that the spool's exclusive create rarely has to retry.
import { randomBytes } from 'node:crypto';

export type QueueId = string;

let last = 0;
let seq = 0;

export function newQueueId(now = Date.now()): QueueId {
  if (now === last) seq = (seq + 1) & 0xfff;
  else { last = now; seq = 0; }
  // 11 hex digits of milliseconds (good until the year 2527), 3 of sequence, 4 random
  const time = now.toString(16).toUpperCase().padStart(11, '0');
  const s = seq.toString(16).toUpperCase().padStart(3, '0');
  return time + s + randomBytes(2).toString('hex').toUpperCase();
}

export function isQueueId(s: string): boolean {
  return /^[0-9A-F]{18}$/.test(s);
}
