// The Spool conformance suite (test/helpers/spool-conformance.ts) on the file store, as
// `smarthost sendmail` and the CLI use it and as the daemon does (files named ahead, spares).
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, mock } from 'node:test';
import { spoolConformance, type SpoolFactory } from '../../test/helpers/spool-conformance.js';
import { FsSpool } from './fs-spool.js';

const opened: FsSpool[] = [];
const dirs: string[] = [];
// stores a test abandoned ("crashed") are closed only now, after every assertion
after(async () => {
  for (const sp of opened.splice(0)) await sp.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function fileStore(recycle: boolean): SpoolFactory {
  return {
    async create() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smarthost-conformance-'));
      dirs.push(dir);
      return {
        async open() {
          const sp = new FsSpool(dir, { recycle });
          opened.push(sp);
          await sp.recover();
          return sp;
        },
        failCommits() {
          mock.method(fs, 'fdatasync', (_fd: number, cb: (e: Error) => void) => setImmediate(() => cb(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }))));
          syncBuiltinESMExports();
          return () => { mock.restoreAll(); syncBuiltinESMExports(); };
        },
      };
    },
  };
}

spoolConformance('FsSpool (sendmail, CLI)', fileStore(false));
spoolConformance('FsSpool (daemon: files named ahead, spares)', fileStore(true));
