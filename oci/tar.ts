/**
 * The little tar the "compat" layout needs: write one reproducible ustar archive, and find a
 * file by base name in an archive (ustar, GNU long names, pax `path`).
 *
 * ```
 *   ┌──────────── 512-byte header ────────────┐┌─ data, padded to 512 ─┐ … ┌─ 2 × 512 zero bytes ─┐
 *   name[100] mode[8] uid[8] gid[8] size[12] mtime[12] chksum[8] type[1] linkname[100]
 *   "ustar\0" "00" uname[32] gname[32] devmajor[8] devminor[8] prefix[155]
 * ```
 */
import { OciError } from './errors.js';

const BLOCK = 512;

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

/** One reproducible tar: mtime 0, uid/gid 0, mode 0644, entries in the given order. */
export function createTar(entries: readonly { name: string; data: Uint8Array }[]): Buffer {
  const parts: Buffer[] = [];
  for (const { name, data } of entries) {
    if (Buffer.byteLength(name) > 100) throw new Error(`tar entry name longer than 100 bytes: ${name}`);
    const h = Buffer.alloc(BLOCK);
    h.write(name, 0, 100, 'utf8');
    h.write(octal(0o644, 8), 100, 'ascii');
    h.write(octal(0, 8), 108, 'ascii');
    h.write(octal(0, 8), 116, 'ascii');
    h.write(octal(data.length, 12), 124, 'ascii');
    h.write(octal(0, 12), 136, 'ascii');
    h.write('        ', 148, 'ascii');
    h.write('0', 156, 'ascii');
    h.write('ustar\0', 257, 'ascii');
    h.write('00', 263, 'ascii');
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
    parts.push(h, Buffer.from(data));
    const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
    if (pad > 0) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

function cString(buf: Buffer, start: number, length: number): string {
  const end = buf.indexOf(0, start);
  return buf.toString('utf8', start, end < 0 || end > start + length ? start + length : end);
}

function parseSize(h: Buffer): number {
  // Base-256 for sizes ≥ 8 GiB (GNU); octal otherwise.
  if ((h[124]! & 0x80) !== 0) {
    let v = 0;
    for (let i = 125; i < 136; i++) v = v * 256 + h[i]!;
    return v;
  }
  const s = cString(h, 124, 12).trim();
  return s === '' ? 0 : parseInt(s, 8);
}

function baseName(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

/**
 * The data of the first regular file whose base name is `name` (Istio/EG: any directory), or
 * undefined. Throws `OCI_NOT_WASM` for a truncated or corrupt archive.
 */
export function findInTar(tar: Buffer, name: string, what: string): Buffer | undefined {
  let off = 0;
  let longName: string | undefined;
  let paxPath: string | undefined;
  while (off + BLOCK <= tar.length) {
    const h = tar.subarray(off, off + BLOCK);
    if (h.every((b) => b === 0)) return undefined;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
    const want = parseInt(cString(h, 148, 8).trim(), 8);
    if (sum !== want)
      throw new OciError('OCI_NOT_WASM', `${what}: tar header checksum mismatch at offset ${off}`, {
        hint: 'the layer is not a valid tar archive',
      });
    const size = parseSize(h);
    const type = String.fromCharCode(h[156]!);
    const dataStart = off + BLOCK;
    const dataEnd = dataStart + size;
    if (dataEnd > tar.length)
      throw new OciError('OCI_NOT_WASM', `${what}: tar archive is truncated inside entry at offset ${off}`, {
        hint: 'the layer is not a complete tar archive',
      });
    const data = tar.subarray(dataStart, dataEnd);
    if (type === 'L') {
      longName = cString(data, 0, data.length);
    } else if (type === 'x') {
      const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(data.toString('utf8'));
      if (m !== null) paxPath = m[1];
    } else if (type === 'g') {
      // global pax header: ignored
    } else {
      let path = longName ?? paxPath;
      if (path === undefined) {
        const prefix = h.subarray(257, 263).toString('ascii').startsWith('ustar') ? cString(h, 345, 155) : '';
        const n = cString(h, 0, 100);
        path = prefix === '' ? n : `${prefix}/${n}`;
      }
      longName = undefined;
      paxPath = undefined;
      if ((type === '0' || type === '\0' || type === '7') && baseName(path) === name) return Buffer.from(data);
    }
    off = dataStart + Math.ceil(size / BLOCK) * BLOCK;
  }
  return undefined;
}
