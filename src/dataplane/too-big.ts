// A packet too big for the tunnel path, as the kernel's tunnels handle it: DF set, an
// ICMP "fragmentation needed" back to the sender (RFC 1191); DF clear, fragments of the
// inner packet before encapsulation (kernel-like) or of the outer packet after it
// (the receiving kernel reassembles them before our socket sees the datagram). IPv6 is
// never fragmented on the way (RFC 8200 §5): always a Packet Too Big (RFC 4443 §3).
import { Drop } from "../encap/drop.js";
import { ipv4FragmentCount, ipv4WriteFragment } from "../encap/fragment.js";
import { type IcmpErrorParams, icmpWriteError, newIcmpErrorParams } from "../encap/icmp.js";
import {
  ICMP6_PACKET_TOO_BIG,
  type Icmp6ErrorParams,
  icmp6WriteError,
  newIcmp6ErrorParams,
} from "../encap/icmp6.js";
import { IPV4_DF, IPV4_FLAGS_FRAG } from "../encap/ipv4.js";
import { IPV6_DST } from "../encap/ipv6.js";
import type { Route6 } from "../fdb/index.js";
import type { DeviceOut } from "./device-out.js";
import type { Sender } from "./send.js";
import type { FwdState } from "./state.js";
import { C } from "./stats.js";
import type { UnderlayOut } from "./underlay-out.js";

export class TooBig {
  /** Frag-needed from the next hop, TTL 64; mtu, source and id filled per error. */
  private readonly icmpErr: IcmpErrorParams = newIcmpErrorParams();
  /** Packet Too Big, hop limit 64; mtu and source filled per error. */
  private readonly icmp6Err: Icmp6ErrorParams = newIcmp6ErrorParams();

  constructor(
    private readonly s: FwdState,
    private readonly send: Sender,
    private readonly out: UnderlayOut,
    private readonly dev: DeviceOut,
  ) {}

  /** DF clear, too big: fragment before encapsulating, each fragment in its own slot. */
  fragmentInner(off: number, total: number, mtu: number): number {
    const s = this.s;
    const n = ipv4FragmentCount(s.u8, off, total, mtu);
    if (n === 0) return Drop.TooBig;
    for (let k = 0; k < n; k++) {
      const frag = s.takeSlot();
      if (frag < 0) return Drop.PoolExhausted;
      const fragOff = s.slab.dataOffset(frag);
      const fragLen = ipv4WriteFragment(s.u8, off, total, mtu, k, s.u8, fragOff);
      const code = this.send.encapL3(frag, fragOff, fragLen);
      if (code !== Drop.None) return code;
    }
    s.stats.counters[C.fragmented_inner]++;
    return Drop.None;
  }

  /** Answer the sender with ICMP "fragmentation needed" (RFC 1191) through the TUN. */
  fragNeeded(off: number, total: number, mtu: number, from: number): void {
    const s = this.s;
    const reply = s.takeSlot();
    if (reply < 0) return;
    const at = s.slab.dataOffset(reply);
    const e = this.icmpErr;
    e.mtu = mtu;
    e.from = from;
    e.id = s.nextId();
    const n = icmpWriteError(s.u8, at, s.u8, off, total, e);
    if (n === 0) return;
    this.dev.push(reply, at, n);
    s.stats.counters[C.icmp_frag_needed_sent]++;
  }

  /**
   * Answer the IPv6 packet at `off` with a Packet Too Big announcing `mtu`, through the
   * TUN, from the route's gateway (the next hop, as for IPv4) or else the destination.
   */
  packetTooBig(off: number, total: number, mtu: number, route: Route6): void {
    const s = this.s;
    const reply = s.takeSlot();
    if (reply < 0) return;
    const at = s.slab.dataOffset(reply);
    const e = this.icmp6Err;
    e.type = ICMP6_PACKET_TOO_BIG;
    e.value = mtu;
    const gw = route.gateway;
    if (gw !== undefined) e.from.set(gw);
    else for (let i = 0; i < 16; i++) e.from[i] = s.u8[off + IPV6_DST + i];
    const n = icmp6WriteError(s.u8, at, s.u8, off, total, e);
    if (n === 0) return;
    this.dev.push(reply, at, n);
    s.stats.counters[C.icmp6_too_big_sent]++;
  }

  /**
   * An outer packet larger than the underlay MTU can only have come from the
   * fragment-outer policy (DF clear): cut it into outer fragments for the raw socket,
   * to s.curRemote.
   */
  fragmentOuter(ipOff: number, total: number): number {
    const s = this.s;
    const mtu = s.o.underlayMtu;
    if ((s.u8[ipOff + IPV4_FLAGS_FRAG] << 8) & IPV4_DF) return Drop.TooBig;
    const n = ipv4FragmentCount(s.u8, ipOff, total, mtu);
    if (n === 0) return Drop.TooBig;
    this.out.room(n);
    for (let k = 0; k < n; k++) {
      const frag = s.takeSlot();
      if (frag < 0) return Drop.PoolExhausted;
      const at = s.slab.dataOffset(frag);
      const len = ipv4WriteFragment(s.u8, ipOff, total, mtu, k, s.u8, at);
      this.out.push(frag, at, len, s.curRemote);
    }
    s.stats.counters[C.fragmented_outer]++;
    return Drop.None;
  }
}
