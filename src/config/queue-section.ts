// [queue]: retry times, and where the queue lives (files under data_dir, or a
// PostgreSQL database several nodes share). Its own file so validate.ts does not
// grow; the defaults are in DEFAULTS beside every other.
import os from 'node:os';
import type { Section } from './reader.js';
import type { QueueConfig, QueueStore } from './types.js';
import { DEFAULTS } from './defaults.js';

const KEYS = ['lifetime', 'retry_min', 'retry_max', 'delay_warning', 'defer_delivery', 'store', 'password_file', 'node_name', 'lease'];
const STORE_EXAMPLE = 'postgresql://smarthost@db.example.com/smarthost';
/** Shorter than this, a lease would expire between two renewals under a little load. */
const MIN_LEASE_MS = 1000;

export function readQueue(q: Section, abs: (p: string) => string): QueueConfig {
  const store = readStore(q, abs);
  const nodeName = q.string('node_name') ?? defaultNodeName();
  if (!/^[A-Za-z0-9._-]{1,63}$/.test(nodeName)) q.problem('node_name', `queue.node_name "${nodeName}" must be 1 to 63 letters, digits, ".", "_" or "-"`, 'write node_name = "relay-a"');
  let leaseMs = q.duration('lease', DEFAULTS.leaseMs, '2m');
  if (leaseMs < MIN_LEASE_MS) {
    q.problem('lease', `queue.lease must be at least 1s (a node renews its leases every third of it)`, 'write lease = "2m"');
    leaseMs = DEFAULTS.leaseMs;
  }
  const queue: QueueConfig = Object.freeze({
    store, nodeName, leaseMs,
    lifetimeMs: q.duration('lifetime', DEFAULTS.lifetimeMs, '5d'),
    retryMinMs: q.duration('retry_min', DEFAULTS.retryMinMs, '5m'),
    retryMaxMs: q.duration('retry_max', DEFAULTS.retryMaxMs, '1h'),
    delayWarningMs: q.duration('delay_warning', DEFAULTS.delayWarningMs, '4h'),
    deferDelivery: q.bool('defer_delivery', false),
  });
  if (queue.retryMinMs > queue.retryMaxMs) q.problem('retry_min', 'queue.retry_min is longer than queue.retry_max', 'make retry_min shorter than retry_max');
  q.finish(KEYS);
  return queue;
}

/** The machine's name, as far as it makes a node name (the part before the first dot). */
function defaultNodeName(): string {
  const name = os.hostname().split('.')[0] ?? '';
  return /^[A-Za-z0-9_-]{1,63}$/.test(name) ? name : 'node';
}

function readStore(q: Section, abs: (p: string) => string): QueueStore {
  const url = q.string('store');
  const passwordFile = q.string('password_file');
  if (url === undefined) {
    if (passwordFile !== undefined) q.problem('password_file', 'queue.password_file is for a PostgreSQL store, and queue.store is not set', `set store = "${STORE_EXAMPLE}", or remove password_file`);
    return DEFAULTS.queueStore;
  }
  let u: URL | undefined;
  try { u = new URL(url); } catch { /* said below */ }
  if (!u || (u.protocol !== 'postgresql:' && u.protocol !== 'postgres:') || !u.hostname || u.pathname.replace(/^\//, '') === '') {
    q.problem('store', `queue.store = "${url}" is not a PostgreSQL connection string (postgresql://USER@HOST[:PORT]/DATABASE)`,
      `write store = "${STORE_EXAMPLE}", or remove it to keep the queue in files under data_dir`);
    return DEFAULTS.queueStore;
  }
  const extra = [...u.searchParams.keys()].filter((k) => k !== 'sslmode');
  if (extra.length) q.problem('store', `queue.store: the parameter "${extra[0]}" is not supported (only sslmode)`, 'remove it from the URL');
  if (u.password && passwordFile !== undefined) {
    q.problem('password_file', 'queue.store has a password in it and queue.password_file names another', 'keep the password in one place: remove it from the URL (better: the file)');
  }
  return Object.freeze({ kind: 'postgresql' as const, url, ...(passwordFile !== undefined ? { passwordFile: abs(passwordFile) } : {}) });
}
