// Address management in-process, on host-local's own on-disk format, so the node subnet
// vxtun generates costs no process start (host-local is a Go binary: ~5 ms per call,
// more under load) and a node can move between this and the real plugin both ways:
//   <dataDir>/<network>/<a.b.c.d>          "containerID\r\nifname", created O_EXCL
//   <dataDir>/<network>/<fd00:0:0:1::2>    the same for IPv6 (dual stack)
//   <dataDir>/<network>/last_reserved_ip.N the last address handed out in range set N
//                                          (round robin; 0 IPv4, 1 IPv6 as listed)
//   <dataDir>/<network>/lock               flock(LOCK_EX) around every change
// The flock is the very lock host-local takes, so the two can even run side by side.
// Leases live on disk only: an agent restart keeps them, as with host-local.
import {
  closeSync,
  constants,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { formatIpv4, prefixMask } from "../encap/addr.js";
import { formatIpv6, maskIpv6, parseCidr6, parseIpv6 } from "../encap/addr6.js";
import { C, native } from "../io/native.js";
import { CniCode, CniError } from "./errors.js";

const LINE_BREAK = "\r\n";
/** A reservation being written (not an address, so no reader takes it for one). */
const TMP_PREFIX = ".reserving-";
const LOCK_WAIT_MS = 10_000;
const EWOULDBLOCK = 11;

export interface LocalRange {
  /** Network address (host bits clear) and prefix length. */
  subnet: { addr: number; len: number };
  gateway: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Run `fn` (synchronous: nothing else of ours can interleave) holding the directory's
 * lock. Waiting for a lock held by another process happens off the event loop's back:
 * LOCK_NB, then retry after a millisecond.
 */
async function locked<T>(dir: string, fn: () => T): Promise<T> {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const fd = openSync(join(dir, "lock"), constants.O_RDONLY | constants.O_CREAT, 0o600);
  try {
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      const r = native.flock(fd, C.LOCK_EX | C.LOCK_NB);
      if (r === 0) break;
      if (r !== -EWOULDBLOCK || Date.now() > deadline) {
        throw new CniError(CniCode.tryAgainLater, `cannot lock ${join(dir, "lock")} (errno ${-r})`);
      }
      await sleep(1);
    }
    return fn();
  } finally {
    closeSync(fd); // releases the flock
  }
}

/** A lease file's family: host-local names them by the address (Go's net.IP.String). */
type Family = 4 | 6;
const FAMILY_FILE: Record<Family, RegExp> = {
  4: /^\d+\.\d+\.\d+\.\d+$/,
  6: /^[0-9a-f:.]*:[0-9a-f:.]*$/,
};

/** Files naming an address (not "lock" or last_reserved_ip.N), of one family or both. */
function leaseFiles(dir: string, family?: Family): string[] {
  const fams: Family[] = family ? [family] : [4, 6];
  try {
    return readdirSync(dir).filter((n) => fams.some((f) => FAMILY_FILE[f].test(n)));
  } catch {
    return [];
  }
}

function owner(dir: string, file: string): string | undefined {
  try {
    return readFileSync(join(dir, file), "utf8").trim();
  } catch {
    return undefined; // released while we looked
  }
}

/** The address of `family` (IPv4 unless told) held by (id, ifname), if any. */
export function localFind(
  dir: string,
  id: string,
  ifname: string,
  family: Family = 4,
): string | undefined {
  const want = id.trim() + LINE_BREAK + ifname;
  return leaseFiles(dir, family).find((f) => owner(dir, f) === want);
}

/** One range set of host-local's, as integers: first to last usable address. */
interface Span {
  family: Family;
  first: bigint;
  last: bigint;
  gateway: bigint;
  text: (v: bigint) => string;
  parse: (s: string) => bigint | undefined;
  /** host-local's range set index: last_reserved_ip.<rangeId>. */
  rangeId: number;
}

/**
 * Reserve the next free address of `range` for (id, ifname), round robin from the last
 * one handed out, skipping the network, broadcast and gateway addresses. Returns it.
 */
export async function localAdd(
  dir: string,
  id: string,
  ifname: string,
  range: LocalRange,
): Promise<number> {
  const { addr: net, len } = range.subnet;
  const span: Span = {
    family: 4,
    first: BigInt(net + 1),
    last: BigInt((net + (~prefixMask(len) >>> 0) - 1) >>> 0),
    gateway: BigInt(range.gateway),
    text: (v) => formatIpv4(Number(v)),
    parse: (p) => BigInt(p.split(".").reduce((a, o) => a * 256 + Number(o), 0) >>> 0),
    rangeId: 0,
  };
  return Number(await reserve(dir, id, ifname, span));
}

/**
 * The IPv6 range set beside it (host-local's second range set by default, as the
 * reference plugins' dual-stack configs list it): every address of the subnet after
 * the network address (IPv6 has no broadcast), the gateway skipped.
 */
export async function localAdd6(
  dir: string,
  id: string,
  ifname: string,
  range: { subnet: string; gateway: string },
  rangeId = 1,
): Promise<string> {
  const c = parseCidr6(range.subnet);
  const gw = parseIpv6(range.gateway);
  if (!c || !gw) throw new CniError(CniCode.ipam, `invalid IPv6 range ${range.subnet}`);
  const big = (b: Uint8Array) => b.reduce((a, x) => (a << 8n) | BigInt(x), 0n);
  const bytes = (v: bigint) =>
    Uint8Array.from({ length: 16 }, (_, i) => Number((v >> BigInt(8 * (15 - i))) & 0xffn));
  const net = big(maskIpv6(c.addr, c.len));
  const span: Span = {
    family: 6,
    first: net + 1n,
    last: net + (1n << BigInt(128 - c.len)) - 1n,
    gateway: big(gw),
    text: (v) => formatIpv6(bytes(v)),
    parse: (p) => {
      const a = parseIpv6(p);
      return a && big(a);
    },
    rangeId,
  };
  return span.text(await reserve(dir, id, ifname, span));
}

function reserve(dir: string, id: string, ifname: string, r: Span): Promise<bigint> {
  return locked(dir, () => {
    const have = localFind(dir, id, ifname, r.family);
    if (have !== undefined) {
      throw new CniError(
        CniCode.ipam,
        `${id} has been allocated to ${have}, duplicate allocation is not allowed`,
      );
    }
    const last = `last_reserved_ip.${r.rangeId}`;
    const size = r.last - r.first + 1n;
    let start = r.first;
    const prevText = owner(dir, last);
    const prev = prevText === undefined ? undefined : r.parse(prevText);
    if (prev !== undefined && prev >= r.first && prev <= r.last) {
      start = prev === r.last ? r.first : prev + 1n;
    }
    // An IPv6 /64 is never scanned whole: a full one would mean 2^64 files.
    for (let i = 0n; i < size && i < 1n << 20n; i++) {
      const ip = r.first + ((start - r.first + i) % size);
      if (ip === r.gateway) continue;
      const text = r.text(ip);
      if (!reserveFile(dir, text, id.trim() + LINE_BREAK + ifname)) continue;
      writeFileSync(join(dir, last), text, { mode: 0o644 });
      return ip;
    }
    throw new CniError(
      CniCode.ipam,
      `no IP addresses available in range set: ${r.text(r.first)}-${r.text(r.last)}`,
    );
  });
}

/**
 * Create `dir/addr` holding `owner`, unless it exists (false). The owner is written to
 * a temporary file first and linked to the address name (link fails on an existing name,
 * as O_EXCL does): a process killed half-way leaves a temporary file, never an empty
 * reservation that no container owns (the soak leaked one so: created, then SIGKILL
 * before the owner was written). Temporaries left by killed processes are removed.
 */
function reserveFile(dir: string, addr: string, owner: string): boolean {
  const tmp = join(dir, `${TMP_PREFIX}${process.pid}`);
  writeFileSync(tmp, owner, { mode: 0o644 });
  try {
    linkSync(tmp, join(dir, addr));
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  } finally {
    unlinkSync(tmp);
    for (const f of readdirSync(dir)) {
      // Under the lock, no other writer's temporary exists: any left is a dead one's.
      if (f.startsWith(TMP_PREFIX)) rmSync(join(dir, f), { force: true });
    }
  }
}

/** Release whatever (id, ifname) holds; host-local's older id-only files too. Idempotent. */
export function localDel(dir: string, id: string, ifname: string): Promise<void> {
  return locked(dir, () => {
    const want = id.trim() + LINE_BREAK + ifname;
    const files = leaseFiles(dir);
    let mine = files.filter((f) => owner(dir, f) === want);
    if (mine.length === 0) mine = files.filter((f) => owner(dir, f) === id.trim());
    for (const f of mine) {
      try {
        unlinkSync(join(dir, f));
      } catch {
        // already gone
      }
    }
  });
}
