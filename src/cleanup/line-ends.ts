// Normalises every line end to CRLF on intake: a bare LF or a bare CR becomes
// CRLF, so the spool never holds sequences like <LF>.<CR><LF> or <CR>.<CR>
// that a next hop could read as the end of DATA (SMTP smuggling,
// CVE-2023-51764 class). Stateful across chunks: a CR at the end of one chunk
// may be completed by an LF at the start of the next.
const CR = 0x0d;
const LF = 0x0a;

export class LineEnds {
  private pendingCR = false;

  push(chunk: Buffer): Buffer {
    // Fast path: no CR/LF issue in this chunk (the common case for CRLF clients).
    if (!this.pendingCR && isCleanCrlf(chunk)) return chunk;
    const out = Buffer.allocUnsafe(chunk.length * 2 + 2);
    let o = 0;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (this.pendingCR) {
        this.pendingCR = false;
        out[o++] = CR; out[o++] = LF;
        if (b === LF) continue; // that was a proper CRLF
      }
      if (b === CR) { this.pendingCR = true; continue; }
      if (b === LF) { out[o++] = CR; out[o++] = LF; continue; }
      out[o++] = b;
    }
    return out.subarray(0, o);
  }

  /** Call at end of message: a trailing lone CR becomes CRLF. */
  end(): Buffer {
    if (!this.pendingCR) return Buffer.alloc(0);
    this.pendingCR = false;
    return Buffer.from('\r\n');
  }
}

/** True when every CR in the chunk is followed by LF and every LF preceded by CR, and it does not end in CR. */
function isCleanCrlf(chunk: Buffer): boolean {
  let i = chunk.indexOf(LF);
  while (i >= 0) {
    if (i === 0 || chunk[i - 1] !== CR) return false;
    i = chunk.indexOf(LF, i + 1);
  }
  let c = chunk.indexOf(CR);
  while (c >= 0) {
    if (c + 1 >= chunk.length || chunk[c + 1] !== LF) return false;
    c = chunk.indexOf(CR, c + 1);
  }
  return true;
}
