// TUN (L3) and TAP (L2) devices: open /dev/net/tun, TUNSETIFF, optional vnet header,
// persistence and offloads; batched reads/writes through the shared slab.
import type { Batch } from "../io/batch.js";
import { IoEndpoint } from "../io/endpoint.js";
import { C, type ErrnoError, errnoError, native } from "../io/native.js";
import type { Slab } from "../io/slab.js";

export type DeviceKind = "tun" | "tap";

/** TUNSETOFFLOAD flags. TSO needs CSUM; USO4 and USO6 go together. */
export const TUN_F = {
  CSUM: C.TUN_F_CSUM,
  TSO4: C.TUN_F_TSO4,
  TSO6: C.TUN_F_TSO6,
  TSO_ECN: C.TUN_F_TSO_ECN,
  USO4: C.TUN_F_USO4,
  USO6: C.TUN_F_USO6,
} as const;

/** sizeof(struct virtio_net_hdr). */
export const VNET_HDR_LEN = 10;

export interface DeviceOptions {
  kind: DeviceKind;
  slab: Slab;
  /** Interface name or template ("vxt%d", the default). At most 15 bytes. */
  name?: string;
  /** IFF_MULTI_QUEUE: open the same name again to add queues. */
  multiQueue?: boolean;
  /** IFF_VNET_HDR: each packet is preceded by a virtio_net_hdr (true = 10 bytes). */
  vnetHdr?: boolean | number;
  /** TUNSETPERSIST: the device outlives this fd. */
  persist?: boolean;
  /** TUN_F_* flags for TUNSETOFFLOAD (needs vnetHdr to be useful); throws if refused. */
  offloads?: number;
  /**
   * With vnetHdr: deliver each read's packet at `off` (slot + headroom) with its
   * virtio_net_hdr in the bytes just before it, instead of header-first at `off`
   * (the default). The dataplane's fast path reads this way, so that encapsulation
   * headroom stays in front of the packet itself.
   */
  vnetInHeadroom?: boolean;
}

const NAME_BAD = /[/:\s]/;

/**
 * Throws a one-line error when `name` cannot be a Linux interface name: empty, more
 * than 15 bytes, ".", "..", or containing '/', ':' or whitespace; '%' only as one "%d"
 * template (allowed when `template` is true).
 */
export function validateIfName(name: string, template = true): void {
  const why = ifNameProblem(name, template);
  if (why) throw new Error(`invalid interface name ${JSON.stringify(name)}: ${why}`);
}

function ifNameProblem(name: string, template: boolean): string | undefined {
  if (name.length === 0) return "empty";
  const bytes = Buffer.byteLength(name);
  if (bytes > 15) return `${bytes} bytes long, at most 15 allowed`;
  if (name === "." || name === "..") return "reserved name";
  const bad = NAME_BAD.exec(name);
  if (bad) return bad[0] === "/" || bad[0] === ":" ? `contains '${bad[0]}'` : "contains whitespace";
  const pct = name.split("%").length - 1;
  if (pct > 0) {
    if (!template) return "contains '%'";
    if (pct > 1 || !name.includes("%d")) return "'%' is only allowed as a single %d template";
  }
  return undefined;
}

export class Device extends IoEndpoint {
  readonly kind: DeviceKind;
  /** The actual interface name (templates resolved by the kernel). */
  readonly name: string;
  /** Bytes of virtio_net_hdr in front of every packet read or written (0 = none). */
  readonly vnetHdrSize: number;
  readonly multiQueue: boolean;
  private persistent: boolean;

  private constructor(
    fd: number,
    kind: DeviceKind,
    name: string,
    slab: Slab,
    vnet: number,
    mq: boolean,
    persist: boolean,
  ) {
    super(fd, C.IO_KIND_TUN, slab);
    this.kind = kind;
    this.name = name;
    this.vnetHdrSize = vnet;
    this.multiQueue = mq;
    this.persistent = persist;
  }

  /** Open (creating if needed) a TUN or TAP device in the current network namespace. */
  static open(opts: DeviceOptions): Device {
    const name = opts.name ?? "vxt%d";
    validateIfName(name);
    if (opts.kind !== "tun" && opts.kind !== "tap") {
      throw new Error(`invalid device kind ${JSON.stringify(opts.kind)}: use "tun" or "tap"`);
    }
    const vnet = opts.vnetHdr === true ? VNET_HDR_LEN : opts.vnetHdr ? opts.vnetHdr : 0;
    let flags = (opts.kind === "tun" ? C.IFF_TUN : C.IFF_TAP) | C.IFF_NO_PI;
    if (opts.multiQueue) flags |= C.IFF_MULTI_QUEUE;
    if (vnet) flags |= C.IFF_VNET_HDR;
    let opened: { fd: number; name: string };
    try {
      opened = native.tunOpen(name, flags);
    } catch (e) {
      const err = e as ErrnoError;
      err.message = `open ${opts.kind} ${name}: ${err.message}`;
      throw err;
    }
    const fd = opened.fd;
    const fail = (what: string, r: number): never => {
      native.close(fd);
      throw errnoError(`${opts.kind} ${opened.name}: ${what}`, r);
    };
    if (vnet) {
      const r = native.tunIoctl(fd, 2, vnet);
      if (r < 0) fail(`TUNSETVNETHDRSZ ${vnet}`, r);
    }
    if (opts.persist !== undefined) {
      const r = native.tunIoctl(fd, 0, opts.persist ? 1 : 0);
      if (r < 0) fail("TUNSETPERSIST", r);
    }
    if (opts.offloads !== undefined) {
      const r = native.tunIoctl(fd, 1, opts.offloads);
      if (r < 0) fail(`TUNSETOFFLOAD 0x${opts.offloads.toString(16)}`, r);
    }
    const dev = new Device(
      fd,
      opts.kind,
      opened.name,
      opts.slab,
      vnet,
      !!opts.multiQueue,
      !!opts.persist,
    );
    if (vnet && opts.vnetInHeadroom) dev.io.setVnet(vnet);
    return dev;
  }

  describe(): string {
    return `${this.kind} ${this.name}`;
  }

  /** TUNSETOFFLOAD; false (nothing thrown) when the kernel refuses the combination. */
  trySetOffload(flags: number): boolean {
    return native.tunIoctl(this.fd, 1, flags) === 0;
  }

  setPersist(on: boolean): void {
    const r = native.tunIoctl(this.fd, 0, on ? 1 : 0);
    if (r < 0) throw errnoError(`${this.describe()}: TUNSETPERSIST`, r);
    this.persistent = on;
  }

  get persist(): boolean {
    return this.persistent;
  }

  /**
   * Write packets [from, from+count) of `batch` (each slab[off, off+len)) to the
   * device, one write() each (a TUN write is one packet; a packet with a gather list
   * is one writev()). With a vnet header each
   * written range must start with one. Returns how many were
   * consumed: written, or dropped with a counted per-packet error. Fewer than `count`
   * means EAGAIN/ENOBUFS (counted) or a detached device stopped the loop.
   */
  writeBatch(batch: Batch, from = 0, count = batch.count - from): number {
    this.useGather(batch);
    return this.io.write(batch.off, batch.len, from, count);
  }

  /**
   * Release the fd and poll handle. A persistent device stays (unless `keep: false`
   * clears persistence first); a non-persistent one disappears with its last fd.
   */
  closeDevice(opts: { keep?: boolean } = {}): void {
    if (this.closed) return;
    if (opts.keep !== undefined && opts.keep !== this.persistent) {
      native.tunIoctl(this.fd, 0, opts.keep ? 1 : 0);
      this.persistent = opts.keep;
    }
    this.close();
  }
}
