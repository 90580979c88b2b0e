// Shared bits for the namespace tests of src/tun.
import type { Batch } from "../../src/io/batch.js";
import type { Slab } from "../../src/io/slab.js";

/** Poll `pred` every 5 ms until true or `ms` elapsed (bounded: tests never hang). */
export async function waitFor(pred: () => boolean, ms = 2000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A recognisable payload for packet i: "vxtun#<i>#" then bytes (i + k) & 0xff. */
export function payload(i: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  const tag = Buffer.from(`vxtun#${i}#`);
  out.set(tag.subarray(0, len));
  for (let k = tag.length; k < len; k++) out[k] = (i + k) & 0xff;
  return out;
}

/** Fill `batch` with `n` packets from fresh slab slots (payload i at dataOffset). */
export function fillBatch(
  slab: Slab,
  batch: Batch,
  n: number,
  len: number,
  addr: number,
  port: number,
): void {
  batch.clear();
  for (let i = 0; i < n; i++) {
    const slot = slab.alloc();
    if (slot < 0) throw new Error("slab exhausted in test");
    const off = slab.dataOffset(slot);
    slab.u8.set(payload(i, len), off);
    batch.push(slot, off, len, addr, port);
  }
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Internet checksum over buf[off, off+len). */
export function inetChecksum(buf: Uint8Array, off: number, len: number): number {
  let sum = 0;
  for (let i = 0; i + 1 < len; i += 2) sum += (buf[off + i] << 8) | buf[off + i + 1];
  if (len & 1) sum += buf[off + len - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}
