// smtp-server's command parser with our DATA phase (data-parser.ts): a subclass,
// created per connection by Connection.newParser() (smtpd-server.ts); nothing of the
// library is replaced or patched. The library members it needs are reached through
// SeamStream (smtp-server-seam.ts), which says why each has no public way.
import { DataParser } from './data-parser.js';
import { SeamStream } from './smtp-server-seam.js';

type Done = (err?: Error | null) => void;

export class SmtpdStream extends SeamStream {
  private data = new DataParser();

  override startDataMode(maxBytes?: number | string | null): ReturnType<SeamStream['startDataMode']> {
    this.data = new DataParser();
    return super.startDataMode(maxBytes);
  }

  protected override feedData(chunk: Buffer, done: Done): void {
    const out = this.messageStream;
    const { content, rest } = this.data.push(chunk);
    let flowing = true;
    for (const part of content) {
      this.countDataBytes(part.length);
      if (out.writable) flowing = out.write(part);
    }
    if (rest) return this.endDataMode(rest, done);
    if (flowing || !out.writable || out.destroyed) return done();
    // wait for drain like the library (a stream the application destroys never drains, it closes)
    const resume = () => { out.removeListener('drain', resume); out.removeListener('close', resume); done(); };
    out.once('drain', resume);
    out.once('close', resume);
  }
}
