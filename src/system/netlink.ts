// rtnetlink from TypeScript: the messages (nlmsghdr + ifinfomsg/ifaddrmsg/rtmsg/ndmsg +
// attributes) are built and read here; the addon (src/io/native/netlink.cc) only opens a
// NETLINK_ROUTE socket in a namespace and moves the bytes. One socket per namespace, one
// request at a time, synchronous: rtnetlink answers inside sendmsg(), so a request costs
// a few syscalls where `ip` cost a process (and `nsenter` a second one).
// Failures throw the same IpError as src/system/iproute.ts, its kind read from the errno
// (never from text), so callers keep `unless("exists")` and friends.
import { closeSync, constants as fsConstants, openSync } from "node:fs";
import { getSystemErrorMap } from "node:util";
import { formatIpv4, parseCidr, parseIpv4, prefixMask } from "../encap/addr.js";
import { formatIpv6 } from "../encap/addr6.js";
import { native } from "../io/native.js";
import { IpError, type IpErrorKind } from "./iproute.js";

// ---- ABI numbers (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/neighbour.h)
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const F_REQUEST = 0x1;
const F_ACK = 0x4;
const F_DUMP = 0x300;
const F_REPLACE = 0x100;
const F_EXCL = 0x200;
const F_CREATE = 0x400;
/** In an error reply: the request is not echoed (NETLINK_CAP_ACK) / TLVs follow. */
const F_CAPPED = 0x100;
const F_ACK_TLVS = 0x200;
const NLMSGERR_ATTR_MSG = 1;

const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
const RTM_GETLINK = 18;
const RTM_NEWADDR = 20;
const RTM_DELADDR = 21;
const RTM_GETADDR = 22;
const RTM_NEWROUTE = 24;
const RTM_DELROUTE = 25;
const RTM_GETROUTE = 26;
const RTM_NEWNEIGH = 28;

const AF_UNSPEC = 0;
const AF_INET = 2;
const AF_INET6 = 10;
const IFF_UP = 0x1;

const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_MASTER = 10;
const IFLA_LINKINFO = 18;
const IFLA_IFALIAS = 20;
const IFLA_AF_SPEC = 26;
const IFLA_NET_NS_FD = 28;
const IFLA_GSO_MAX_SIZE = 41;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const IFLA_INFO_SLAVE_KIND = 4;
const IFLA_INFO_SLAVE_DATA = 5;
const VETH_INFO_PEER = 1;
const IFLA_BRPORT_MODE = 4; // hairpin
const IFLA_INET6_ADDR_GEN_MODE = 8;
const IN6_ADDR_GEN_MODE_NONE = 1;
const NLA_F_NESTED = 0x8000;

const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_F_NODAD = 0x02;

const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_PRIORITY = 6;
const RTA_TABLE = 15;
const RT_TABLE_MAIN = 254;
export const RTPROT_BOOT = 3;
export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_LINK = 253;
const RTN_UNICAST = 1;
const RTNH_F_ONLINK = 4;

const NDA_DST = 1;
const NDA_LLADDR = 2;
const NUD_PERMANENT = 0x80;

const IFNAMSIZ = 16;
/** IFALIASZ - 1: the kernel refuses a longer IFLA_IFALIAS. */
export const MAX_ALIAS = 255;

// ---- message building

type Attr = { type: number; data: Buffer };

function attr(type: number, data: Buffer): Attr {
  return { type, data };
}
const u8 = (type: number, v: number) => attr(type, Buffer.from([v]));
function u32(type: number, v: number): Attr {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return attr(type, b);
}
const str = (type: number, s: string) => attr(type, Buffer.from(`${s}\0`));
function ipv4(type: number, a: number): Attr {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(a >>> 0);
  return attr(type, b);
}
function nested(type: number, attrs: Attr[], head?: Buffer): Attr {
  return attr(type | NLA_F_NESTED, Buffer.concat([head ?? Buffer.alloc(0), encodeAttrs(attrs)]));
}
const align4 = (n: number) => (n + 3) & ~3;

function encodeAttrs(attrs: Attr[]): Buffer {
  const parts: Buffer[] = [];
  for (const a of attrs) {
    const h = Buffer.alloc(align4(4 + a.data.length));
    h.writeUInt16LE(4 + a.data.length, 0);
    h.writeUInt16LE(a.type, 2);
    a.data.copy(h, 4);
    parts.push(h);
  }
  return Buffer.concat(parts);
}

function ifinfomsg(o: { family?: number; index?: number; up?: boolean }): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(o.family ?? AF_UNSPEC, 0);
  b.writeInt32LE(o.index ?? 0, 4);
  if (o.up !== undefined) {
    b.writeUInt32LE(o.up ? IFF_UP : 0, 8);
    b.writeUInt32LE(IFF_UP, 12);
  }
  return b;
}

function ifaddrmsg(index: number, prefixLen: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(AF_INET, 0);
  b.writeUInt8(prefixLen, 1);
  b.writeUInt32LE(index, 4);
  return b;
}

function macBytes(mac: string): Buffer {
  const parts = mac.split(":");
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) {
    throw new Error(`invalid MAC address ${JSON.stringify(mac)}`);
  }
  return Buffer.from(parts.map((p) => Number.parseInt(p, 16)));
}

function checkName(name: string): void {
  if (name === "" || Buffer.byteLength(name) >= IFNAMSIZ || /[/\s:]/.test(name)) {
    throw new IpError(
      ["netlink", name],
      22,
      `invalid interface name ${JSON.stringify(name)}`,
      "",
      "other",
    );
  }
}

// ---- replies

export interface NlMessage {
  type: number;
  flags: number;
  /** The message body after the nlmsghdr. */
  body: Buffer;
}

function splitMessages(buf: Buffer): NlMessage[] {
  const out: NlMessage[] = [];
  let off = 0;
  while (off + 16 <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < 16 || off + len > buf.length) break;
    out.push({
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      body: buf.subarray(off + 16, off + len),
    });
    off += align4(len);
  }
  return out;
}

/** Attributes from `off` in `b`, by type (nested flag dropped); the last of a type wins. */
export function parseAttrs(b: Buffer, off = 0): Map<number, Buffer> {
  const m = new Map<number, Buffer>();
  while (off + 4 <= b.length) {
    const len = b.readUInt16LE(off);
    if (len < 4 || off + len > b.length) break;
    m.set(b.readUInt16LE(off + 2) & 0x3fff, b.subarray(off + 4, off + len));
    off += align4(len);
  }
  return m;
}

const cstr = (b: Buffer | undefined) =>
  b === undefined ? undefined : b.toString("utf8", 0, b.indexOf(0) >= 0 ? b.indexOf(0) : b.length);

const ERRNO_KIND: Record<string, IpErrorKind> = {
  EEXIST: "exists",
  ENODEV: "not-found",
  ENOENT: "not-found",
  ESRCH: "not-found",
  EADDRNOTAVAIL: "not-found",
  EPERM: "permission",
  EACCES: "permission",
};

const errnoMap = getSystemErrorMap();

/** The IpError for errno `err` (positive) answering the request described by `what`. */
export function netlinkError(what: readonly string[], err: number, extack?: string): IpError {
  const [name, message] = errnoMap.get(-err) ?? [`E${err}`, `error ${err}`];
  const detail = extack ? `${extack} (${name})` : `${message} (${name})`;
  return new IpError(["netlink", ...what], err, detail, "", ERRNO_KIND[name] ?? "other");
}

// ---- the socket

let seqNext = 1;

export interface LinkAttrs {
  name?: string;
  mtu?: number;
  mac?: string;
  /** ifindex of the bridge to attach to (0 detaches). */
  master?: number;
  up?: boolean;
  alias?: string;
  gsoMaxSize?: number;
  /** An open fd of the network namespace the link is created in (IFLA_NET_NS_FD). */
  nsFd?: number;
}

export interface Link {
  index: number;
  name: string;
  mtu: number;
  up: boolean;
  mac?: string;
  master?: number;
  alias?: string;
  kind?: string;
}

export interface Addr {
  index: number;
  /** Host byte order. */
  addr: number;
  len: number;
}

export interface Route {
  /**
   * Network and prefix length; len 0 is the default route. IPv4 as a number (host byte
   * order); IPv6 as 16 bytes, which makes the route an IPv6 one (its gateway too).
   */
  dst: number | Uint8Array;
  len: number;
  gateway?: number | Uint8Array;
  oif?: number;
  scope?: number;
  onlink?: boolean;
}

/**
 * A NETLINK_ROUTE socket in one network namespace: "" = ours, an absolute path (a pod's
 * /proc/PID/ns/net or /run/netns/x), or a name under /run/netns.
 */
export class Netlink {
  private fd: number;

  constructor(readonly ns = "") {
    const path = ns === "" || ns.startsWith("/") ? ns : `/run/netns/${ns}`;
    if (ns !== "" && !ns.startsWith("/") && !/^[A-Za-z0-9_.-]+$/.test(ns)) {
      throw new Error(`invalid network namespace name ${JSON.stringify(ns)}`);
    }
    try {
      this.fd = native.nlOpen(path);
    } catch (e) {
      const errno = (e as { errno?: number }).errno ?? 0;
      // A vanished namespace (ENOENT) or a path that is not one (EINVAL).
      throw netlinkError([`open ${path}`], errno || 5);
    }
  }

  close(): void {
    if (this.fd >= 0) native.close(this.fd);
    this.fd = -1;
  }

  /** Send one request; the reply messages (the final ack/DONE excluded). Throws IpError. */
  request(what: readonly string[], type: number, flags: number, body: Buffer): NlMessage[] {
    if (this.fd < 0) throw new Error("netlink socket closed");
    const seq = seqNext++ & 0x7fffffff || seqNext++;
    const head = Buffer.alloc(16);
    head.writeUInt32LE(16 + body.length, 0);
    head.writeUInt16LE(type, 4);
    head.writeUInt16LE(F_REQUEST | flags, 6);
    head.writeUInt32LE(seq, 8);
    const reply = native.nlTransact(this.fd, Buffer.concat([head, body]));
    const out: NlMessage[] = [];
    for (const m of splitMessages(reply)) {
      if (m.type === NLMSG_DONE) break;
      if (m.type !== NLMSG_ERROR) {
        out.push(m);
        continue;
      }
      const err = -m.body.readInt32LE(0);
      if (err === 0) break;
      let extack: string | undefined;
      if (m.flags & F_ACK_TLVS) {
        const echoed = m.flags & F_CAPPED ? 16 : m.body.readUInt32LE(4);
        extack = cstr(parseAttrs(m.body, 4 + align4(echoed)).get(NLMSGERR_ATTR_MSG));
      }
      throw netlinkError(what, err, extack);
    }
    return out;
  }

  private change(what: readonly string[], type: number, flags: number, body: Buffer): void {
    this.request(what, type, F_ACK | flags, body);
  }

  // ---- links

  /** The link called `name` (or with that ifindex); throws IpError "not-found" if none. */
  link(dev: string | number): Link {
    const byName = typeof dev === "string";
    if (byName) checkName(dev);
    const [m] = this.request(
      ["link show", String(dev)],
      RTM_GETLINK,
      0,
      Buffer.concat([
        ifinfomsg({ index: byName ? 0 : dev }),
        encodeAttrs(byName ? [str(IFLA_IFNAME, dev)] : []),
      ]),
    );
    return parseLink(m.body);
  }

  links(): Link[] {
    return this.request(["link show"], RTM_GETLINK, F_DUMP, ifinfomsg({})).map((m) =>
      parseLink(m.body),
    );
  }

  /** ifindex of `name`, or undefined when there is no such link. */
  index(name: string): number | undefined {
    try {
      return this.link(name).index;
    } catch (e) {
      if (e instanceof IpError && e.kind === "not-found") return undefined;
      throw e;
    }
  }

  /**
   * A veth pair in one message: the kernel creates both ends or neither, so a failure
   * (a name taken on either side, a vanished namespace) leaves nothing behind.
   */
  addVeth(host: LinkAttrs & { name: string }, peer: LinkAttrs & { name: string }): void {
    checkName(host.name);
    checkName(peer.name);
    const peerBody = Buffer.concat([ifinfomsg({ up: peer.up }), encodeAttrs(linkAttrs(peer))]);
    const info = nested(IFLA_LINKINFO, [
      str(IFLA_INFO_KIND, "veth"),
      nested(IFLA_INFO_DATA, [attr(VETH_INFO_PEER | NLA_F_NESTED, peerBody)]),
    ]);
    this.change(
      ["link add", host.name, "type veth peer", peer.name],
      RTM_NEWLINK,
      F_CREATE | F_EXCL,
      Buffer.concat([ifinfomsg({ up: host.up }), encodeAttrs([...linkAttrs(host), info])]),
    );
  }

  /** A bridge; "exists" if the name is taken. */
  addBridge(name: string, mtu: number): void {
    checkName(name);
    this.change(
      ["link add", name, "type bridge"],
      RTM_NEWLINK,
      F_CREATE | F_EXCL,
      Buffer.concat([
        ifinfomsg({}),
        encodeAttrs([
          str(IFLA_IFNAME, name),
          u32(IFLA_MTU, mtu),
          nested(IFLA_LINKINFO, [str(IFLA_INFO_KIND, "bridge")]),
        ]),
      ]),
    );
  }

  /** Change a link's attributes (by name or ifindex); only the given ones change. */
  setLink(dev: string | number, a: Omit<LinkAttrs, "name">): void {
    const index = typeof dev === "number" ? dev : 0;
    const attrs = linkAttrs(a);
    if (typeof dev === "string") {
      checkName(dev);
      attrs.unshift(str(IFLA_IFNAME, dev));
    }
    this.change(
      ["link set", String(dev)],
      RTM_NEWLINK,
      0,
      Buffer.concat([ifinfomsg({ index, up: a.up }), encodeAttrs(attrs)]),
    );
  }

  /** Hairpin on a bridge port (the link must already be attached). */
  setHairpin(index: number, on: boolean): void {
    const info = nested(IFLA_LINKINFO, [
      str(IFLA_INFO_SLAVE_KIND, "bridge"),
      nested(IFLA_INFO_SLAVE_DATA, [u8(IFLA_BRPORT_MODE, on ? 1 : 0)]),
    ]);
    this.change(
      ["link set", String(index), "type bridge_slave hairpin"],
      RTM_NEWLINK,
      0,
      Buffer.concat([ifinfomsg({ index }), encodeAttrs([info])]),
    );
  }

  /** No IPv6 link-local address (addrgenmode none). */
  setAddrGenModeNone(index: number): void {
    const spec = nested(IFLA_AF_SPEC, [
      nested(AF_INET6, [u8(IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE)]),
    ]);
    this.change(
      ["link set", String(index), "addrgenmode none"],
      RTM_NEWLINK,
      0,
      Buffer.concat([ifinfomsg({ index }), encodeAttrs([spec])]),
    );
  }

  delLink(dev: string | number): void {
    const attrs: Attr[] = [];
    if (typeof dev === "string") {
      checkName(dev);
      attrs.push(str(IFLA_IFNAME, dev));
    }
    const index = typeof dev === "number" ? dev : 0;
    this.change(
      ["link del", String(dev)],
      RTM_DELLINK,
      0,
      Buffer.concat([ifinfomsg({ index }), encodeAttrs(attrs)]),
    );
  }

  // ---- addresses (IPv4)

  /** Add `addr/len` on link `index`; `replace` keeps an equal one instead of failing. */
  addAddr(index: number, addr: number, len: number, replace = false): void {
    this.change(
      [replace ? "addr replace" : "addr add", `${formatIpv4(addr)}/${len}`, "dev", String(index)],
      RTM_NEWADDR,
      F_CREATE | (replace ? F_REPLACE : F_EXCL),
      Buffer.concat([
        ifaddrmsg(index, len),
        encodeAttrs([ipv4(IFA_LOCAL, addr), ipv4(IFA_ADDRESS, addr)]),
      ]),
    );
  }

  /**
   * Add an IPv6 `addr/len` on link `index` without duplicate address detection (nodad:
   * usable at once, as flanneld's VTEP and the CNI bridge plugin's addresses are).
   */
  addAddr6(index: number, addr: Uint8Array, len: number): void {
    const msg = ifaddrmsg(index, len);
    msg.writeUInt8(AF_INET6, 0);
    msg.writeUInt8(IFA_F_NODAD, 2);
    this.change(
      ["addr replace", `${formatIpv6(addr)}/${len}`, "dev", String(index), "nodad"],
      RTM_NEWADDR,
      F_CREATE | F_REPLACE,
      Buffer.concat([
        msg,
        encodeAttrs([attr(IFA_LOCAL, Buffer.from(addr)), attr(IFA_ADDRESS, Buffer.from(addr))]),
      ]),
    );
  }

  delAddr(index: number, addr: number, len: number): void {
    this.change(
      ["addr del", `${formatIpv4(addr)}/${len}`, "dev", String(index)],
      RTM_DELADDR,
      0,
      Buffer.concat([ifaddrmsg(index, len), encodeAttrs([ipv4(IFA_LOCAL, addr)])]),
    );
  }

  /** IPv4 addresses, of one link or of all. */
  addrs(index?: number): Addr[] {
    const out: Addr[] = [];
    for (const m of this.request(["addr show"], RTM_GETADDR, F_DUMP, ifaddrmsg(0, 0))) {
      if (m.body.readUInt8(0) !== AF_INET) continue;
      const idx = m.body.readUInt32LE(4);
      if (index !== undefined && idx !== index) continue;
      const a = parseAttrs(m.body, 8);
      const local = a.get(IFA_LOCAL) ?? a.get(IFA_ADDRESS);
      if (local) out.push({ index: idx, addr: local.readUInt32BE(0), len: m.body.readUInt8(1) });
    }
    return out;
  }

  /** Global-scope IPv6 addresses of every link, in the kernel's order, by ifindex. */
  globalAddrs6(): Map<number, string[]> {
    const out = new Map<number, string[]>();
    const req = ifaddrmsg(0, 0);
    req.writeUInt8(AF_INET6, 0);
    for (const m of this.request(["-6 addr show"], RTM_GETADDR, F_DUMP, req)) {
      if (m.body.readUInt8(0) !== AF_INET6 || m.body.readUInt8(3) !== RT_SCOPE_UNIVERSE) continue;
      const a = parseAttrs(m.body, 8);
      const local = a.get(IFA_LOCAL) ?? a.get(IFA_ADDRESS);
      if (!local) continue;
      const idx = m.body.readUInt32LE(4);
      out.set(idx, [...(out.get(idx) ?? []), formatIpv6(local)]);
    }
    return out;
  }

  /** IPv6 addresses of one link, as "addr/len" text. */
  addrs6(index: number): string[] {
    const out: string[] = [];
    const req = ifaddrmsg(0, 0);
    req.writeUInt8(AF_INET6, 0);
    for (const m of this.request(["-6 addr show"], RTM_GETADDR, F_DUMP, req)) {
      if (m.body.readUInt8(0) !== AF_INET6 || m.body.readUInt32LE(4) !== index) continue;
      const a = parseAttrs(m.body, 8);
      const local = a.get(IFA_LOCAL) ?? a.get(IFA_ADDRESS);
      if (local) out.push(`${formatIpv6(local)}/${m.body.readUInt8(1)}`);
    }
    return out;
  }

  // ---- routes (IPv4, main table)

  /** `mode`: "add" fails on an existing route, "replace" overwrites it. */
  addRoute(r: Route, mode: "add" | "replace" = "replace"): void {
    this.change(
      [`route ${mode}`, routeText(r)],
      RTM_NEWROUTE,
      F_CREATE | (mode === "replace" ? F_REPLACE : F_EXCL),
      routeBody(r),
    );
  }

  /**
   * The main table's unicast routes of one family (IPv4 by default), with who made each
   * (`protocol`: RTPROT_BOOT for ours and `ip route add`'s, 2 for the kernel's own).
   */
  routes(family: "ipv4" | "ipv6" = "ipv4"): (Route & { protocol: number })[] {
    const v6 = family === "ipv6";
    const af = v6 ? AF_INET6 : AF_INET;
    const out: (Route & { protocol: number })[] = [];
    const req = Buffer.alloc(12);
    req.writeUInt8(af, 0);
    for (const m of this.request(["route show"], RTM_GETROUTE, F_DUMP, req)) {
      const b = m.body;
      if (b.readUInt8(0) !== af || b.readUInt8(7) !== RTN_UNICAST) continue;
      const a = parseAttrs(b, 12);
      if ((a.get(RTA_TABLE)?.readUInt32LE(0) ?? b.readUInt8(4)) !== RT_TABLE_MAIN) continue;
      const dst = a.get(RTA_DST);
      const gw = a.get(RTA_GATEWAY);
      out.push({
        dst: v6 ? (dst ? new Uint8Array(dst) : new Uint8Array(16)) : (dst?.readUInt32BE(0) ?? 0),
        len: b.readUInt8(1),
        gateway: gw && (v6 ? new Uint8Array(gw) : gw.readUInt32BE(0)),
        oif: a.get(RTA_OIF)?.readUInt32LE(0),
        scope: b.readUInt8(6),
        onlink: (b.readUInt32LE(8) & RTNH_F_ONLINK) !== 0,
        protocol: b.readUInt8(5),
      });
    }
    return out;
  }

  /**
   * The main table's default routes of one family that name an output link (a multipath
   * route names its links per hop and is left out, as `ip route show default` has no
   * `dev` for it), with their metrics.
   */
  defaultRoutes(family: "ipv4" | "ipv6"): { oif: number; metric: number }[] {
    const af = family === "ipv6" ? AF_INET6 : AF_INET;
    const req = Buffer.alloc(12);
    req.writeUInt8(af, 0);
    const out: { oif: number; metric: number }[] = [];
    for (const m of this.request(["route show default"], RTM_GETROUTE, F_DUMP, req)) {
      const b = m.body;
      if (b.readUInt8(0) !== af || b.readUInt8(1) !== 0 || b.readUInt8(7) !== RTN_UNICAST) {
        continue;
      }
      const a = parseAttrs(b, 12);
      if ((a.get(RTA_TABLE)?.readUInt32LE(0) ?? b.readUInt8(4)) !== RT_TABLE_MAIN) continue;
      const oif = a.get(RTA_OIF)?.readUInt32LE(0);
      if (oif !== undefined) out.push({ oif, metric: a.get(RTA_PRIORITY)?.readUInt32LE(0) ?? 0 });
    }
    return out;
  }

  delRoute(r: Route): void {
    this.change(["route del", routeText(r)], RTM_DELROUTE, 0, routeBody(r));
  }

  // ---- neighbours

  /** A permanent IPv4 neighbour (as flanneld writes them). */
  replaceNeigh(index: number, addr: number, mac: string): void {
    const b = Buffer.alloc(12);
    b.writeUInt8(AF_INET, 0);
    b.writeInt32LE(index, 4);
    b.writeUInt16LE(NUD_PERMANENT, 8);
    this.change(
      ["neigh replace", formatIpv4(addr), "lladdr", mac],
      RTM_NEWNEIGH,
      F_CREATE | F_REPLACE,
      Buffer.concat([b, encodeAttrs([ipv4(NDA_DST, addr), attr(NDA_LLADDR, macBytes(mac))])]),
    );
  }
}

function linkAttrs(a: LinkAttrs): Attr[] {
  const out: Attr[] = [];
  if (a.name !== undefined) out.push(str(IFLA_IFNAME, a.name));
  if (a.mtu !== undefined) {
    if (!Number.isInteger(a.mtu) || a.mtu < 68 || a.mtu > 65535) {
      throw new Error(`invalid MTU ${a.mtu}`);
    }
    out.push(u32(IFLA_MTU, a.mtu));
  }
  if (a.mac !== undefined) out.push(attr(IFLA_ADDRESS, macBytes(a.mac)));
  if (a.master !== undefined) out.push(u32(IFLA_MASTER, a.master));
  if (a.alias !== undefined) out.push(attr(IFLA_IFALIAS, Buffer.from(a.alias)));
  if (a.gsoMaxSize !== undefined) out.push(u32(IFLA_GSO_MAX_SIZE, a.gsoMaxSize));
  if (a.nsFd !== undefined) out.push(u32(IFLA_NET_NS_FD, a.nsFd));
  return out;
}

function parseLink(body: Buffer): Link {
  const a = parseAttrs(body, 16);
  const mac = a.get(IFLA_ADDRESS);
  const info = a.get(IFLA_LINKINFO);
  return {
    index: body.readInt32LE(4),
    name: cstr(a.get(IFLA_IFNAME)) ?? "",
    mtu: a.get(IFLA_MTU)?.readUInt32LE(0) ?? 0,
    up: (body.readUInt32LE(8) & IFF_UP) !== 0,
    mac:
      mac && mac.length === 6
        ? [...mac].map((x) => x.toString(16).padStart(2, "0")).join(":")
        : undefined,
    master: a.get(IFLA_MASTER)?.readUInt32LE(0),
    alias: cstr(a.get(IFLA_IFALIAS)),
    kind: info ? cstr(parseAttrs(info).get(IFLA_INFO_KIND)) : undefined,
  };
}

function routeBody(r: Route): Buffer {
  const b = Buffer.alloc(12);
  const v6 = typeof r.dst !== "number";
  b.writeUInt8(v6 ? AF_INET6 : AF_INET, 0);
  b.writeUInt8(r.len, 1);
  b.writeUInt8(RT_TABLE_MAIN, 4);
  b.writeUInt8(RTPROT_BOOT, 5);
  b.writeUInt8(r.scope ?? RT_SCOPE_UNIVERSE, 6);
  b.writeUInt8(RTN_UNICAST, 7);
  if (r.onlink) b.writeUInt32LE(RTNH_F_ONLINK, 8);
  const attrs: Attr[] = [];
  if (r.len > 0) {
    attrs.push(
      typeof r.dst === "number" ? ipv4(RTA_DST, r.dst) : attr(RTA_DST, Buffer.from(r.dst)),
    );
  }
  if (r.gateway !== undefined) {
    const gw = r.gateway;
    attrs.push(typeof gw === "number" ? ipv4(RTA_GATEWAY, gw) : attr(RTA_GATEWAY, Buffer.from(gw)));
  }
  if (r.oif !== undefined) attrs.push(u32(RTA_OIF, r.oif));
  return Buffer.concat([b, encodeAttrs(attrs)]);
}

function routeText(r: Route): string {
  const addr = typeof r.dst === "number" ? formatIpv4(r.dst) : formatIpv6(r.dst);
  const dst = r.len === 0 ? "default" : `${addr}/${r.len}`;
  const gw = r.gateway;
  const via =
    gw === undefined ? "" : ` via ${typeof gw === "number" ? formatIpv4(gw) : formatIpv6(gw)}`;
  return `${dst}${via}${r.oif !== undefined ? ` oif ${r.oif}` : ""}`;
}

/** "10.0.0.0/8" or "default" as a Route's dst/len; undefined if it is neither. */
export function routeDst(s: string): { dst: number; len: number } | undefined {
  if (s === "default") return { dst: 0, len: 0 };
  const c = parseCidr(s);
  return c && { dst: (c.addr & prefixMask(c.len)) >>> 0, len: c.len };
}

/** "10.244.1.1/24" as the address itself (host bits kept, unlike parseCidr) and length. */
export function interfaceAddr(s: string): { addr: number; len: number } | undefined {
  const [a, l] = s.split("/");
  const addr = parseIpv4(a);
  const len = l === undefined ? 32 : Number(l);
  if (addr === undefined || !/^\d{1,2}$/.test(l ?? "32") || len > 32) return undefined;
  return { addr, len };
}

/** Open a socket in `ns`, run `fn`, always close it. */
export function withNetlink<T>(ns: string, fn: (nl: Netlink) => T): T {
  const nl = new Netlink(ns);
  try {
    return fn(nl);
  } finally {
    nl.close();
  }
}

/** The result of `fn`, or undefined when it failed with an IpError of `kind`. */
export function unlessKind<T>(kind: IpErrorKind, fn: () => T): T | undefined {
  try {
    return fn();
  } catch (e) {
    if (e instanceof IpError && e.kind === kind) return undefined;
    throw e;
  }
}

/** An fd of the namespace at `path` (for IFLA_NET_NS_FD), closed after `fn`. */
export function withNsFd<T>(path: string, fn: (fd: number) => T): T {
  let fd: number;
  try {
    fd = openSync(path, fsConstants.O_RDONLY);
  } catch (e) {
    const errno = -((e as { errno?: number }).errno ?? -5);
    throw netlinkError([`open ${path}`], errno);
  }
  try {
    return fn(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * The node bridge pods attach to: created if missing (a concurrent creator is fine),
 * with `mtu`, exactly `cidr` among its addresses inside `network` (an address from an
 * earlier subnet of this node would route a stranger's pods here), and up. Idempotent.
 * Returns its ifindex.
 */
export function ensureBridgeNl(
  nl: Netlink,
  name: string,
  o: { cidr: string; mtu: number; network: { addr: number; len: number } },
): number {
  const want = interfaceAddr(o.cidr);
  if (!want) throw new Error(`invalid bridge address ${o.cidr}`);
  const created = unlessKind("exists", () => {
    nl.addBridge(name, o.mtu);
    return true;
  });
  const index = nl.link(name).index;
  if (!created) {
    nl.setLink(index, { mtu: o.mtu });
    const mask = prefixMask(o.network.len);
    for (const a of nl.addrs(index)) {
      const same = a.addr === want.addr && a.len === want.len;
      if (!same && (a.addr & mask) >>> 0 === o.network.addr) nl.delAddr(index, a.addr, a.len);
    }
  }
  nl.addAddr(index, want.addr, want.len, true);
  nl.setLink(index, { up: true });
  return index;
}

/** The promise form the agent and the iproute2 version had: `ns` as in Netlink. */
export async function ensureBridge(
  ns: string,
  name: string,
  o: { cidr: string; mtu: number; network: { addr: number; len: number } },
): Promise<void> {
  withNetlink(ns, (nl) => ensureBridgeNl(nl, name, o));
}
