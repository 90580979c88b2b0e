// Shared test helpers: hex literals with spaces/comments allowed.

export function hex(text: string): Buffer {
  const clean = text.replace(/#[^\n]*/g, "").replace(/\s+/g, "");
  if (clean.length % 2 !== 0 || /[^0-9a-f]/i.test(clean)) throw new Error(`bad hex: ${text}`);
  return Buffer.from(clean, "hex");
}

/** Copy `bytes` into a fresh buffer at `at`, leaving headroom in front and room behind. */
export function place(bytes: Uint8Array, at: number, tail = 0): Buffer {
  const b = Buffer.alloc(at + bytes.length + tail, 0xee);
  b.set(bytes, at);
  return b;
}

export function toHex(buf: Uint8Array, off = 0, len = buf.length - off): string {
  return Buffer.from(buf.buffer, buf.byteOffset + off, len).toString("hex");
}
