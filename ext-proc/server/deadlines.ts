/**
 * One coarse shared timer for every pending handler deadline (undici `FastTimer`): all deadlines
 * have the same length, so they expire in the order they were added, and a FIFO with one armed
 * `setTimeout` for its head replaces a timer per message. Entries are cancelled lazily: the owner
 * compares the token it gets back with the one it is still waiting on.
 */

export interface DeadlineOwner {
  /** Called when `token`'s deadline passes; ignore it if no longer waiting on `token`. */
  onDeadline(token: number): void;
}

/** One pending deadline; `owner` is dropped by `cancel` once the owner no longer waits. */
export interface DeadlineEntry {
  readonly at: number;
  owner: DeadlineOwner | undefined;
  readonly token: number;
}

export class DeadlineQueue {
  private readonly entries: DeadlineEntry[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly timeoutMs: number) {}

  /** Arms a deadline `timeoutMs` from now. */
  add(owner: DeadlineOwner, token: number): DeadlineEntry {
    const entry: DeadlineEntry = { at: performance.now() + this.timeoutMs, owner, token };
    this.entries.push(entry);
    if (this.timer === undefined) this.arm();
    return entry;
  }

  /**
   * Forgets the owner of an entry that is no longer waited on (the handler answered, the stream
   * ended). The entry stays in the FIFO until its time, but it no longer keeps the owner (a whole
   * stream and its call) alive that long: held for the full timeout, every stream with an async
   * handler would outlive V8's young generation and be promoted, costing full GCs.
   */
  static cancel(entry: DeadlineEntry): void {
    entry.owner = undefined;
  }

  /** Pending entries (including cancelled ones not yet reached). */
  get size(): number {
    return this.entries.length - this.head;
  }

  /** Drops every entry and the timer. */
  clear(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.entries.length = 0;
    this.head = 0;
  }

  private arm(): void {
    const first = this.entries[this.head];
    if (first === undefined) {
      this.entries.length = 0;
      this.head = 0;
      this.timer = undefined;
      return;
    }
    this.timer = setTimeout(() => this.fire(), Math.max(0, first.at - performance.now()));
    // A pending deadline must not keep the process alive on its own.
    this.timer.unref();
  }

  private fire(): void {
    const now = performance.now();
    for (let e = this.entries[this.head]; e !== undefined && e.at <= now + 1; e = this.entries[this.head]) {
      this.head++;
      const owner = e.owner;
      e.owner = undefined;
      if (owner !== undefined) owner.onDeadline(e.token);
    }
    // Compact now and then so the array does not grow without bound under steady load.
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries.splice(0, this.head);
      this.head = 0;
    }
    this.arm();
  }
}
