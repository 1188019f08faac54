// The bytes of messages this daemon committed to a database store, kept in memory (up to a
// budget) until they are delivered: new mail is delivered at once, and reading back what was
// just written would cost a round trip and, for bytea, a hex decoding of twice the size. The
// bytes of a committed message never change, so a copy here is never stale.
export class RecentBodies {
  private readonly bodies = new Map<string, Buffer>();
  private bytes = 0;

  constructor(private readonly budget: number) {}

  keep(id: string, body: Buffer): void {
    if (body.length > this.budget / 4) return; // a large one would push out many small ones
    this.forget(id);
    this.bodies.set(id, body);
    this.bytes += body.length;
    for (const [old, b] of this.bodies) { // oldest first (a Map keeps insertion order)
      if (this.bytes <= this.budget) break;
      this.bodies.delete(old);
      this.bytes -= b.length;
    }
  }

  get(id: string): Buffer | undefined { return this.bodies.get(id); }

  forget(id: string): void {
    const b = this.bodies.get(id);
    if (!b) return;
    this.bodies.delete(id);
    this.bytes -= b.length;
  }

  get size(): { readonly messages: number; readonly bytes: number } { return { messages: this.bodies.size, bytes: this.bytes }; }
}
