// Queue ids: uppercase hex, time-ordered so `ls` and `mailq` list oldest first
// (roughly: the daemon draws them when it names queue files ahead, so an id
// can be as old as the daemon's last quiet spell). Within a process the sequence makes them unique; across
// processes (daemon and `smarthost sendmail`) the low 16 bits of the pid tell
// them apart, and the spool's exclusive create and link() refuse the rare id
// that still collides.

export type QueueId = string;

let last = 0;
let seq = 0;
const TAG = (process.pid & 0xffff).toString(16).toUpperCase().padStart(4, '0');

export function newQueueId(now = Date.now()): QueueId {
  if (now > last) { last = now; seq = 0; }
  else if (++seq > 0xfff) { last++; seq = 0; } // 4096 in one ms, or the clock stepped back: stay increasing
  // 11 hex digits of milliseconds (good until the year 2527), 3 of sequence, 4 of pid
  const time = last.toString(16).toUpperCase().padStart(11, '0');
  const s = seq.toString(16).toUpperCase().padStart(3, '0');
  return time + s + TAG;
}

export function isQueueId(s: string): boolean {
  return /^[0-9A-F]{18}$/.test(s);
}
