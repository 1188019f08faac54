// The queue manager's waiting lines. A deferred message waits in DueHeap by
// the time of its next attempt, and one timer is set for the earliest (a timer
// per message cost some 200 bytes each: 200 MB for a million); a message due
// now waits in a Fifo for a delivery slot. Both hand-written: a few lines each,
// and Node has neither.

/** What DueHeap orders: `due` (epoch ms), ties by `id`; `heapIndex` is the heap's own (-1: not in it). */
export interface HeapItem { readonly id: string; due: number; heapIndex: number }

/** A binary min-heap that knows where each item is, so one can be taken out or moved in O(log n). */
export class DueHeap<T extends HeapItem> {
  private readonly a: T[] = [];

  get size(): number { return this.a.length; }
  peek(): T | undefined { return this.a[0]; }
  has(item: T): boolean { return item.heapIndex >= 0 && this.a[item.heapIndex] === item; }

  /** Adds `item`, or moves it to its place after its `due` changed. */
  set(item: T): void {
    if (this.has(item)) { this.up(item.heapIndex); this.down(item.heapIndex); return; }
    item.heapIndex = this.a.length;
    this.a.push(item);
    this.up(item.heapIndex);
  }

  delete(item: T): void {
    if (!this.has(item)) return;
    const i = item.heapIndex;
    const last = this.a.pop()!;
    item.heapIndex = -1;
    if (last === item) return;
    this.a[i] = last;
    last.heapIndex = i;
    this.up(i);
    this.down(i);
  }

  pop(): T | undefined {
    const top = this.a[0];
    if (top) this.delete(top);
    return top;
  }

  /** Every item, in no order; the heap must not change while this runs. */
  values(): readonly T[] { return this.a; }

  private less(i: number, j: number): boolean {
    const x = this.a[i]!, y = this.a[j]!;
    return x.due < y.due || (x.due === y.due && x.id < y.id);
  }

  private swap(i: number, j: number): void {
    const x = this.a[i]!, y = this.a[j]!;
    this.a[i] = y; y.heapIndex = i;
    this.a[j] = x; x.heapIndex = j;
  }

  private up(i: number): void {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) return;
      this.swap(i, p);
      i = p;
    }
  }

  private down(i: number): void {
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < this.a.length && this.less(l, m)) m = l;
      if (r < this.a.length && this.less(r, m)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }
}

/** A first-in first-out queue with O(1) take (Array.shift() copies, at a million entries that shows). */
export class Fifo<T> {
  private items: T[] = [];
  private head = 0;

  get length(): number { return this.items.length - this.head; }

  push(item: T): void { this.items.push(item); }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head]!;
    this.items[this.head++] = undefined as T; // let it go
    if (this.head > 1024 && this.head * 2 > this.items.length) { this.items = this.items.slice(this.head); this.head = 0; }
    return item;
  }
}
