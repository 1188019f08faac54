// The HTTP API of a running test daemon: its base URL (from the "API and console on"
// log line), tokens made with the real `smarthost token add`, and a small fetch wrapper.
import type { RunningDaemon } from './daemon.js';

export interface Api {
  readonly base: string;
  token(name: string, readOnly?: boolean): string;
  /** A string body is sent as message/rfc822, anything else as JSON. */
  call(token: string | undefined, method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; headers: Headers; json: any; text: string }>;
}

export async function apiOf(d: RunningDaemon): Promise<Api> {
  const line = await d.waitForLog(/API and console on (https?:\/\/\S+)\//);
  const base = /(https?:\/\/\S+)\//.exec(line)![1]!;
  return {
    base,
    token(name, readOnly = false) {
      const r = d.cli(['token', 'add', name, ...(readOnly ? ['--read-only'] : [])]);
      if (r.status !== 0) throw new Error(`token add ${name}: ${r.stderr}`);
      return r.stdout.trim();
    },
    async call(token, method, path, body, headers = {}) {
      const raw = typeof body === 'string';
      const res = await fetch(`${base}${path}`, {
        method,
        headers: {
          ...(token !== undefined ? { Authorization: `Bearer ${token}` } : {}),
          ...(body !== undefined ? { 'Content-Type': raw ? 'message/rfc822' : 'application/json' } : {}),
          ...headers,
        },
        ...(body !== undefined ? { body: raw ? body : JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      let json: unknown;
      try { json = JSON.parse(text); } catch { json = undefined; }
      return { status: res.status, headers: res.headers, json, text };
    },
  };
}
