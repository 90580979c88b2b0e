// Socket option helpers shared by udp.ts and raw.ts.
import { C, errnoError, native } from "../io/native.js";

export type PmtuDiscMode = "do" | "dont" | "want" | "probe";

const PMTU_DISC: Record<PmtuDiscMode, number> = {
  dont: C.IP_PMTUDISC_DONT,
  want: C.IP_PMTUDISC_WANT,
  do: C.IP_PMTUDISC_DO,
  probe: C.IP_PMTUDISC_PROBE,
};

export function setIntOpt(fd: number, level: number, name: number, value: number, what: string) {
  const r = native.setsockoptInt(fd, level, name, value);
  if (r < 0) throw errnoError(what, r);
}

/**
 * Size a socket buffer: SO_*BUFFORCE first (root may exceed net.core.*mem_max), then
 * the plain option. Returns the effective size the kernel reports (it doubles it).
 */
export function sizeBuffer(fd: number, which: "rcv" | "snd", bytes: number): number {
  const force = which === "rcv" ? C.SO_RCVBUFFORCE : C.SO_SNDBUFFORCE;
  const plain = which === "rcv" ? C.SO_RCVBUF : C.SO_SNDBUF;
  if (native.setsockoptInt(fd, C.SOL_SOCKET, force, bytes) < 0) {
    setIntOpt(fd, C.SOL_SOCKET, plain, bytes, `setsockopt SO_${which.toUpperCase()}BUF`);
  }
  return native.getsockoptInt(fd, C.SOL_SOCKET, plain);
}

export function setPmtuDisc(fd: number, mode: PmtuDiscMode): void {
  const v = PMTU_DISC[mode];
  if (v === undefined) throw new Error(`invalid PMTU discovery mode ${JSON.stringify(mode)}`);
  setIntOpt(fd, C.SOL_IP, C.IP_MTU_DISCOVER, v, `setsockopt IP_MTU_DISCOVER ${mode}`);
}

/** Open a socket and run `configure`; the fd is closed if configuration throws. */
export function withNewSocket<T>(type: number, protocol: number, configure: (fd: number) => T): T {
  const fd = native.socket(C.AF_INET, type, protocol);
  try {
    return configure(fd);
  } catch (e) {
    native.close(fd);
    throw e;
  }
}
