// smtp-server's command parser with our DATA phase (data-parser.ts): a subclass,
// created per connection by Connection._createParser() (server.ts); nothing of
// the library is replaced or patched.
//
// The SMTPStream members relied on (smtp-server is pinned to 3.21.6;
// src/smtpd/data-stream.test.ts fails if any disappears or stops being called):
// - `_feedDataStream(chunk, done)`: its _write() hands every DATA-mode chunk here;
// - `_dataStream`: the message stream startDataMode() created;
// - `_countDataBytes(n)`: keeps `dataBytes` and `sizeExceeded` right;
// - `_endDataMode(chunk, rest, done)`: back to commands with the bytes after the dot.
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import { DataParser } from './data-parser.js';

type Done = (err?: Error | null) => void;

export class SmtpdStream extends SMTPStream {
  private data = new DataParser();

  override startDataMode(maxBytes?: number | string | null): ReturnType<SMTPStream['startDataMode']> {
    this.data = new DataParser();
    return super.startDataMode(maxBytes);
  }

  override _feedDataStream(chunk: Buffer, done: Done): void {
    const out = this._dataStream!;
    const { content, rest } = this.data.push(chunk);
    let flowing = true;
    for (const part of content) {
      this._countDataBytes(part.length);
      if (out.writable) flowing = out.write(part);
    }
    if (rest) return this._endDataMode(false, rest, done);
    if (flowing || !out.writable || out.destroyed) return done();
    // wait for drain like the library (a stream the application destroys never drains, it closes)
    const resume = () => { out.removeListener('drain', resume); out.removeListener('close', resume); done(); };
    out.once('drain', resume);
    out.once('close', resume);
  }
}
