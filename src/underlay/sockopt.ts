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

/** The IPv6 twins (IPV6_MTU_DISCOVER): "dont" lets the sender fragment, as IPv6 may. */
const PMTU_DISC6: Record<PmtuDiscMode, number> = {
  dont: C.IPV6_PMTUDISC_DONT,
  want: C.IPV6_PMTUDISC_WANT,
  do: C.IPV6_PMTUDISC_DO,
  probe: C.IPV6_PMTUDISC_PROBE,
};

export function setPmtuDisc(fd: number, mode: PmtuDiscMode, v6 = false): void {
  const v = (v6 ? PMTU_DISC6 : PMTU_DISC)[mode];
  if (v === undefined) throw new Error(`invalid PMTU discovery mode ${JSON.stringify(mode)}`);
  if (v6) setIntOpt(fd, C.SOL_IPV6, C.IPV6_MTU_DISCOVER, v, `setsockopt IPV6_MTU_DISCOVER ${mode}`);
  else setIntOpt(fd, C.SOL_IP, C.IP_MTU_DISCOVER, v, `setsockopt IP_MTU_DISCOVER ${mode}`);
}

/** Open a socket and run `configure`; the fd is closed if configuration throws. */
export function withNewSocket<T>(
  type: number,
  protocol: number,
  configure: (fd: number) => T,
  domain: number = C.AF_INET,
): T {
  const fd = native.socket(domain, type, protocol);
  try {
    return configure(fd);
  } catch (e) {
    native.close(fd);
    throw e;
  }
}
