/**
 * A one-line progress bar for `push` and `pull` on a terminal. Redrawn at most ten times a
 * second; nothing is drawn when the stream is not a TTY (scripts get clean stderr).
 */
export interface ProgressBar {
  update(done: number, total: number): void;
  /** Clears the line. */
  finish(): void;
}

const NOOP: ProgressBar = { update: () => undefined, finish: () => undefined };

function mib(n: number): string {
  return (n / (1024 * 1024)).toFixed(1);
}

/** A bar labelled `label` on `stream`; a no-op unless `enabled` and the stream is a TTY. */
export function progressBar(stream: NodeJS.WritableStream, label: string, enabled: boolean): ProgressBar {
  const tty = stream as NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  if (!enabled || tty.isTTY !== true) return NOOP;
  let last = 0;
  let drawn = false;
  const draw = (done: number, total: number): void => {
    const width = Math.max(10, Math.min(40, (tty.columns ?? 80) - label.length - 30));
    const frac = total > 0 ? Math.min(1, done / total) : 1;
    const filled = Math.round(frac * width);
    stream.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${mib(done)}/${mib(total)} MiB`);
    drawn = true;
  };
  return {
    update(done, total) {
      const now = Date.now();
      if (now - last < 100 && done < total) return;
      last = now;
      draw(done, total);
    },
    finish() {
      if (drawn) stream.write('\r\x1b[K');
    },
  };
}
