// The virtio_net_hdr (include/uapi/linux/virtio_net.h) that travels in front of every
// packet on a TUN/TAP opened with IFF_VNET_HDR: what the kernel did not do yet (a
// checksum to complete, a super-packet to segment at gso_size) or already did
// (DATA_VALID). Fields are little-endian (virtio 1.0 on every Linux host we run on).

/** sizeof(struct virtio_net_hdr). */
export const VNET_LEN = 10;
export const VNET_FLAGS = 0;
export const VNET_GSO_TYPE = 1;
export const VNET_HDR_LEN = 2;
export const VNET_GSO_SIZE = 4;
export const VNET_CSUM_START = 6;
export const VNET_CSUM_OFFSET = 8;
export const VNET_F_NEEDS_CSUM = 1;
export const VNET_F_DATA_VALID = 2;
export const VNET_GSO_NONE = 0;
export const VNET_GSO_TCPV4 = 1;
export const VNET_GSO_UDP = 3;
export const VNET_GSO_TCPV6 = 4;
export const VNET_GSO_UDP_L4 = 5;
export const VNET_GSO_ECN = 0x80;

/** A virtio_net_hdr's fields (one reusable object per reader or writer). */
export interface VnetHeader {
  flags: number;
  gsoType: number;
  /** Bytes of headers in front of the payload (a hint for the kernel). */
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

export function newVnetHeader(): VnetHeader {
  return { flags: 0, gsoType: VNET_GSO_NONE, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 };
}

function le16(u8: Uint8Array, off: number): number {
  return u8[off] | (u8[off + 1] << 8);
}

function setLe16(u8: Uint8Array, off: number, v: number): void {
  u8[off] = v & 0xff;
  u8[off + 1] = (v >>> 8) & 0xff;
}

/** Read the header at `at` into `h`. */
export function vnetRead(u8: Uint8Array, at: number, h: VnetHeader): void {
  h.flags = u8[at + VNET_FLAGS];
  h.gsoType = u8[at + VNET_GSO_TYPE];
  h.hdrLen = le16(u8, at + VNET_HDR_LEN);
  h.gsoSize = le16(u8, at + VNET_GSO_SIZE);
  h.csumStart = le16(u8, at + VNET_CSUM_START);
  h.csumOffset = le16(u8, at + VNET_CSUM_OFFSET);
}

/** Write `h` at `at`. */
export function vnetWrite(u8: Uint8Array, at: number, h: VnetHeader): void {
  u8[at + VNET_FLAGS] = h.flags;
  u8[at + VNET_GSO_TYPE] = h.gsoType;
  setLe16(u8, at + VNET_HDR_LEN, h.hdrLen);
  setLe16(u8, at + VNET_GSO_SIZE, h.gsoSize);
  setLe16(u8, at + VNET_CSUM_START, h.csumStart);
  setLe16(u8, at + VNET_CSUM_OFFSET, h.csumOffset);
}

/** A zero header: "nothing to do, verify checksums yourself" (or DATA_VALID in flags). */
export function vnetWritePlain(u8: Uint8Array, at: number, flags: number): void {
  for (let i = 0; i < VNET_LEN; i++) u8[at + i] = 0;
  u8[at] = flags;
}
