// Loads the vxtun_native addon (built by `node-gyp rebuild` into build/Release) and
// declares its shape. The addon is a thin driver: see src/io/native/addon.cc.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { constants as osConstants } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface NativeIo {
  start(
    stack: Uint32Array,
    meta: Uint32Array,
    slotSize: number,
    headroom: number,
    slot: Uint32Array,
    off: Uint32Array,
    len: Uint32Array,
    addr: Uint32Array | null,
    port: Uint16Array | null,
    maxBatch: number,
    onBatch: (count: number) => void,
  ): void;
  stop(): void;
  pause(): void;
  resume(): void;
  wake(): void;
  unref(): void;
  write(off: Uint32Array, len: Uint32Array, from: number, count: number): number;
  send(
    off: Uint32Array,
    len: Uint32Array,
    addr: Uint32Array,
    port: Uint16Array,
    from: number,
    count: number,
  ): number;
  close(closeFd: boolean): void;
  /** IPv6 socket: addr[i] indexes `peers` (16 bytes each); reads put sources in rxAddr. */
  setAddr6(peers: Uint8Array, rxAddr: Uint8Array): void;
  /** TUN: reads carry `bytes` of virtio_net_hdr just before the packet's offset. */
  setVnet(bytes: number): void;
  /** Sockets: store each received datagram's UDP_GRO segment size (0: none) here. */
  setGro(gso: Uint16Array | null): void;
  /** write()/sendGso() take packet i from these gather lists when gCount[i] > 0. */
  setGather(
    gStart: Uint32Array | null,
    gCount?: Uint16Array,
    fOff?: Uint32Array,
    fLen?: Uint32Array,
  ): void;
  /** sendmmsg with per-message UDP_SEGMENT (gso) and IP_TOS/IP_TTL (tosTtl = tos<<8|ttl). */
  sendGso(
    off: Uint32Array,
    len: Uint32Array,
    addr: Uint32Array,
    port: Uint16Array,
    gso: Uint16Array,
    tosTtl: Uint16Array,
    from: number,
    count: number,
  ): number;
}

/** The addon's checksum loop over one slab (see src/io/native/csum.cc). */
export interface NativeCsum {
  /** Folded, not complemented, one's-complement sum of slab[off, off+len). */
  sum(off: number, len: number): number;
  /** out[i] = sum(offs[i], lens[i]) for i < count (arrays given to the constructor). */
  sumMany(count: number): void;
  /** sum() with the portable scalar loop even where the addon uses AVX2 (for tests). */
  sumScalar(off: number, len: number): number;
}

export interface NativeIoConstructor {
  new (
    fd: number,
    kind: number,
    slab: ArrayBuffer,
    stats: Float64Array,
    onError: (errno: number, err: Error) => void,
    onPmtu?: (addr: number, port: number, mtu: number) => void,
  ): NativeIo;
}

export interface NativeConstants {
  readonly [name: string]: number;
}

export interface NativeAddon {
  tunOpen(name: string, flags: number): { fd: number; name: string };
  /** which: 0 TUNSETPERSIST, 1 TUNSETOFFLOAD, 2 TUNSETVNETHDRSZ. Returns 0 or -errno. */
  tunIoctl(fd: number, which: 0 | 1 | 2, value: number): number;
  socket(domain: number, type: number, protocol: number): number;
  setsockoptInt(fd: number, level: number, name: number, value: number): number;
  /** SO_ATTACH_FILTER: a classic BPF program (src/underlay/bpf.ts); 0 or -errno. */
  attachFilter(fd: number, program: Uint8Array): number;
  getsockoptInt(fd: number, level: number, name: number): number;
  bind4(fd: number, addr: number, port: number): void;
  getsockname4(fd: number): [number, number];
  bind6(fd: number, addr: Uint8Array, port: number): void;
  /** The local address goes to `out` (16 bytes); returns the port. */
  getsockname6(fd: number, out: Uint8Array): number;
  close(fd: number): number;
  setns(fd: number, nstype: number): void;
  /** A NETLINK_ROUTE socket opened inside the namespace at `netnsPath` ("" = ours). */
  nlOpen(netnsPath: string): number;
  /** Send one request; every reply message to its sequence number up to the ack/DONE. */
  nlTransact(fd: number, request: Uint8Array): Buffer;
  /** flock(2): 0 or -errno (constants LOCK_EX, LOCK_UN, LOCK_NB). */
  flock(fd: number, op: number): number;
  Io: NativeIoConstructor;
  Csum: new (
    slab: ArrayBuffer,
    offs?: Uint32Array,
    lens?: Uint32Array,
    out?: Uint32Array,
  ) => NativeCsum;
  /** The checksum loop the addon chose at load: "avx2" or "scalar". */
  csumLoop: string;
  constants: NativeConstants;
}

/** Errors thrown or reported by the addon carry the errno name and number. */
export interface ErrnoError extends Error {
  code?: string;
  errno?: number;
}

function findAddon(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // src/io (tsx) and dist/io (compiled) are both two levels below the repo root;
  // dist/src/io (tsc with rootDir ".") is three.
  for (const up of ["../..", "../../.."]) {
    const p = join(here, up, "build", "Release", "vxtun_native.node");
    if (existsSync(p)) return p;
  }
  throw new Error(
    "vxtun_native.node not found under build/Release: run `npx node-gyp rebuild` (needs g++, make, python3)",
  );
}

const require = createRequire(import.meta.url);
export const native: NativeAddon = require(findAddon()) as NativeAddon;
export const C = native.constants;

const errnoNames = new Map<number, string>();
for (const [name, num] of Object.entries(osConstants.errno)) {
  if (!errnoNames.has(num)) errnoNames.set(num, name);
}

/** "ENODEV" for 19; used where the addon returns -errno instead of throwing. */
function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

/** A one-line error for a negative errno returned by the addon. */
export function errnoError(what: string, negErrno: number): ErrnoError {
  const code = errnoName(-negErrno);
  const e = new Error(`${what}: ${code}`) as ErrnoError;
  e.code = code;
  e.errno = -negErrno;
  return e;
}
