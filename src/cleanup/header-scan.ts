// Reads the header section of a message as it streams past (after line ends
// are normalised): counts Received headers for loop detection (Postfix
// hopcount_limit) and notes Message-ID, Date and From for logs and for local
// submissions that lack them. Keeps at most one partial header line.
export interface HeaderFacts {
  received: number;
  messageId?: string;
  hasDate: boolean;
  hasFrom: boolean;
  /** True once the blank line ending the header section was seen. */
  complete: boolean;
  /** Bytes of the header section read so far (up to and including its blank line). */
  bytes: number;
}

const MAX_LINE = 64 * 1024; // a header line longer than this is not counted, just skipped

export class HeaderScan {
  readonly facts: HeaderFacts = { received: 0, hasDate: false, hasFrom: false, complete: false, bytes: 0 };
  private partial = '';
  private skipping = false;
  private inMessageId = false; // the last header was Message-ID: its value may be folded

  push(chunk: Buffer): void {
    if (this.facts.complete) return;
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) {
        this.facts.bytes += chunk.length - start;
        if (!this.skipping) this.partial += chunk.subarray(start).toString('latin1');
        if (this.partial.length > MAX_LINE) { this.partial = ''; this.skipping = true; }
        return;
      }
      const line = this.skipping ? '' : this.partial + chunk.subarray(start, nl).toString('latin1');
      const wasSkipping = this.skipping;
      this.facts.bytes += nl + 1 - start;
      this.partial = '';
      this.skipping = false;
      start = nl + 1;
      if (!wasSkipping && this.line(line.replace(/\r$/, ''))) return;
    }
  }

  /** Returns true when the header section ended. */
  private line(line: string): boolean {
    if (line === '') { this.facts.complete = true; return true; }
    if (/^[ \t]/.test(line)) { // folded continuation
      if (this.inMessageId) this.facts.messageId = `${this.facts.messageId ?? ''} ${line.trim()}`.trim();
      return false;
    }
    const colon = line.indexOf(':');
    this.inMessageId = false;
    if (colon <= 0) return false;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (name === 'received') this.facts.received++;
    else if (name === 'date') this.facts.hasDate = true;
    else if (name === 'from') this.facts.hasFrom = true;
    else if (name === 'message-id' && this.facts.messageId === undefined) {
      this.facts.messageId = line.slice(colon + 1).trim();
      this.inMessageId = true;
    }
    return false;
  }
}
