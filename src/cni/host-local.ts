// Address management in-process, on host-local's own on-disk format, so the node subnet
// vxtun generates costs no process start (host-local is a Go binary: ~5 ms per call,
// more under load) and a node can move between this and the real plugin both ways:
//   <dataDir>/<network>/<a.b.c.d>          "containerID\r\nifname", created O_EXCL
//   <dataDir>/<network>/last_reserved_ip.0 the last address handed out (round robin)
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
import { C, native } from "../io/native.js";
import { CniCode, CniError } from "./errors.js";

const LINE_BREAK = "\r\n";
const LAST = "last_reserved_ip.0";
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

/** Files naming an address (not "lock" or last_reserved_ip.N). */
function leaseFiles(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => /^\d+\.\d+\.\d+\.\d+$/.test(n));
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

/** The address held by (id, ifname), if any. */
export function localFind(dir: string, id: string, ifname: string): string | undefined {
  const want = id.trim() + LINE_BREAK + ifname;
  return leaseFiles(dir).find((f) => owner(dir, f) === want);
}

/**
 * Reserve the next free address of `range` for (id, ifname), round robin from the last
 * one handed out, skipping the network, broadcast and gateway addresses. Returns it.
 */
export function localAdd(
  dir: string,
  id: string,
  ifname: string,
  range: LocalRange,
): Promise<number> {
  return locked(dir, () => {
    const have = localFind(dir, id, ifname);
    if (have !== undefined) {
      throw new CniError(
        CniCode.ipam,
        `${id} has been allocated to ${have}, duplicate allocation is not allowed`,
      );
    }
    const { addr: net, len } = range.subnet;
    const first = (net + 1) >>> 0;
    const last = (net + (~prefixMask(len) >>> 0) - 1) >>> 0;
    const size = last - first + 1;
    let start = first;
    const prev = owner(dir, LAST);
    if (prev !== undefined) {
      const p = prev.split(".").reduce((a, o) => a * 256 + Number(o), 0) >>> 0;
      if (p >= first && p <= last) start = p === last ? first : p + 1;
    }
    for (let i = 0; i < size; i++) {
      const ip = first + ((start - first + i) % size);
      if (ip === range.gateway) continue;
      const text = formatIpv4(ip);
      if (!reserve(dir, text, id.trim() + LINE_BREAK + ifname)) continue;
      writeFileSync(join(dir, LAST), text, { mode: 0o644 });
      return ip;
    }
    throw new CniError(
      CniCode.ipam,
      `no IP addresses available in range set: ${formatIpv4(first)}-${formatIpv4(last)}`,
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
function reserve(dir: string, addr: string, owner: string): boolean {
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
