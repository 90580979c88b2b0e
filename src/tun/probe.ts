// Run-time offload probe (after wireguard-go conn/features_linux.go and
// tun/tun_linux.go): ask the kernel what it accepts instead of guessing from versions.

import { close } from "node:fs";
import { C, native } from "../io/native.js";
import { probeUdpGso } from "../underlay/udp.js";
import { TUN_F } from "./device.js";

export interface OffloadProbe {
  /** TUNSETOFFLOAD accepted for each combination (TSO needs CSUM; USO = USO4|USO6). */
  csum: boolean;
  csumTso4: boolean;
  csumTso6: boolean;
  csumUso: boolean;
  /** Everything at once: CSUM|TSO4|TSO6|USO4|USO6. */
  all: boolean;
  udpSegment: boolean;
  udpGro: boolean;
}

/**
 * Creates a throwaway TUN device (IFF_VNET_HDR, no persistence) in the CURRENT network
 * namespace, tries TUNSETOFFLOAD combinations, and probes UDP_SEGMENT / UDP_GRO on a
 * throwaway socket. In tests and labs call it inside withNetns(), so the root
 * namespace never sees the device (docs/network-safety.md).
 */
export function probeOffloads(): OffloadProbe {
  const { fd } = native.tunOpen("vxtprobe%d", C.IFF_TUN | C.IFF_NO_PI | C.IFF_VNET_HDR);
  const accepts = (flags: number) => native.tunIoctl(fd, 1, flags) === 0;
  try {
    const res = {
      csum: accepts(TUN_F.CSUM),
      csumTso4: accepts(TUN_F.CSUM | TUN_F.TSO4),
      csumTso6: accepts(TUN_F.CSUM | TUN_F.TSO6),
      csumUso: accepts(TUN_F.CSUM | TUN_F.USO4 | TUN_F.USO6),
      all: accepts(TUN_F.CSUM | TUN_F.TSO4 | TUN_F.TSO6 | TUN_F.USO4 | TUN_F.USO6),
    };
    return { ...res, ...probeUdpGso() };
  } finally {
    // In the thread pool: closing the last fd of a TUN device unregisters it, which waits
    // for an RCU grace period (15-30 ms here) that a starting agent need not wait for.
    close(fd, () => {});
  }
}
