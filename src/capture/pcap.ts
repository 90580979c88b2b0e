// Classic libpcap file writer, for captures that tests and tools hand to tshark. Test
// and tool code: it allocates freely.

import { writeFileSync } from "node:fs";

export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101;

const PCAP_MAGIC = 0xa1b2c3d4;
const GLOBAL_HDR_LEN = 24;
const RECORD_HDR_LEN = 16;

export class PcapWriter {
  private readonly chunks: Buffer[] = [];

  constructor(
    readonly linktype: number,
    readonly snaplen = 262144,
  ) {
    const h = Buffer.alloc(GLOBAL_HDR_LEN);
    h.writeUInt32LE(PCAP_MAGIC, 0);
    h.writeUInt16LE(2, 4);
    h.writeUInt16LE(4, 6);
    h.writeInt32LE(0, 8); // thiszone
    h.writeUInt32LE(0, 12); // sigfigs
    h.writeUInt32LE(snaplen, 16);
    h.writeUInt32LE(linktype, 20);
    this.chunks.push(h);
  }

  /** Append buf[off..off+len); `timeUs` defaults to the record index in ms. */
  add(buf: Uint8Array, off = 0, len = buf.length - off, timeUs?: number): void {
    const t = timeUs ?? (this.chunks.length - 1) * 1000;
    const caplen = Math.min(len, this.snaplen);
    const r = Buffer.alloc(RECORD_HDR_LEN + caplen);
    r.writeUInt32LE(Math.floor(t / 1e6), 0);
    r.writeUInt32LE(t % 1e6, 4);
    r.writeUInt32LE(caplen, 8);
    r.writeUInt32LE(len, 12);
    r.set(buf.subarray(off, off + caplen), RECORD_HDR_LEN);
    this.chunks.push(r);
  }

  get count(): number {
    return this.chunks.length - 1;
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.chunks);
  }

  writeFile(path: string): void {
    writeFileSync(path, this.toBuffer());
  }
}
