// The options and sub-commands of each verb, as data: main.ts parses with it,
// and `smarthost completion` and `smarthost man` are generated from it (and
// from each verb's help text), so the three cannot disagree.
import type { OptionTable } from './args.js';

const STATES = ['queued', 'deferred', 'held'] as const;

/** Filters of `queue` / `mailq`; also select the messages of delete, hold, release and flush. */
const QUEUE_FILTERS: OptionTable = {
  from: { type: 'string', multiple: true, value: 'ADDR', help: 'only messages from ADDR, @DOMAIN or any part of an address ("<>": bounces)' },
  to: { type: 'string', multiple: true, value: 'ADDR', help: 'only messages with a recipient still to deliver matching ADDR, @DOMAIN or a part' },
  state: { type: 'string', multiple: true, value: STATES, help: 'queued | deferred | held (repeat or separate with commas)' },
  'older-than': { type: 'string', value: 'DURATION', help: 'only messages that arrived more than DURATION ago ("30m", "2d")' },
};

export const OPTIONS: Readonly<Record<string, OptionTable>> = {
  start: {
    'log-format': { type: 'string', value: ['postfix', 'json'], help: 'log line format' },
    listen: { type: 'string', multiple: true, value: 'HOST:PORT', help: 'listen here instead of the [[listen]] addresses (repeat for more)' },
  },
  check: {},
  probe: {
    json: { type: 'boolean' }, url: { type: 'string', value: 'URL' }, from: { type: 'string', value: 'ADDR' },
    'send-test': { type: 'string', value: 'ADDR' }, timeout: { type: 'string', value: 'DURATION' },
  },
  route: { from: { type: 'string', value: 'ADDR' }, to: { type: 'string', multiple: true, value: 'ADDR' } },
  user: { 'password-stdin': { type: 'boolean', help: 'read the password from standard input' } },
  token: { 'read-only': { type: 'boolean', help: 'add: the token may only GET (list and read the queue)' } },
  suppression: { json: { type: 'boolean', help: 'list: print JSON' } },
  oauth: {},
  auth: { user: { type: 'string', multiple: true, value: 'NAME', help: 'unblock: lift the per-account block of this AUTH user (repeat for more)' } },
  queue: {
    json: { type: 'boolean', help: 'print JSON' }, ...QUEUE_FILTERS,
    headers: { type: 'boolean', help: 'show ID: print the message header' },
    body: { type: 'boolean', help: 'show ID: print the message body' },
    raw: { type: 'boolean', help: 'show ID: print the whole message as queued' },
  },
  mailq: { json: { type: 'boolean', help: 'print JSON' }, ...QUEUE_FILTERS },
  completion: {},
  man: {},
  config: {},
  import: {
    output: { type: 'string', short: 'o', value: 'FILE', help: 'where to write (default ./smarthost.toml)' },
    force: { type: 'boolean', help: 'overwrite FILE and its password files' },
    'data-dir': { type: 'string', value: 'DIR', help: 'data_dir of the written configuration (default /var/lib/smarthost)' },
  },
  dkim: {
    selector: { type: 'string', value: 'SELECTOR', help: 'keygen: the selector (default s<year><month>)' },
    type: { type: 'string', value: ['rsa2048', 'ed25519'], help: 'keygen: the key type (default rsa2048)' },
    output: { type: 'string', short: 'o', value: 'KEYFILE', help: 'keygen: where to write the key (default data_dir/dkim/DOMAIN.SELECTOR.key)' },
    force: { type: 'boolean', help: 'keygen: replace an existing key file' },
  },
};

/** Words that may follow the verb, for completion. */
export const SUBCOMMANDS: Readonly<Record<string, readonly string[]>> = {
  queue: ['list', 'show', 'delete', 'hold', 'release', 'flush'],
  user: ['add', 'del', 'list', 'passwd'],
  token: ['add', 'del', 'list'],
  suppression: ['list', 'del'],
  route: ['test'],
  oauth: ['login'],
  auth: ['unblock'],
  completion: ['bash', 'zsh'],
  man: ['smarthost', 'smarthost.toml'],
  config: ['default'],
  import: ['postfix', 'sendmail'],
  dkim: ['keygen'],
};
