// The encode/decode path must not allocate: over a million operations of every format
// not one garbage collection may happen (a scavenge is triggered by allocation only).

import { PerformanceObserver } from "node:perf_hooks";
import t from "tap";
import { arpParse, arpRequestToReply, arpWriteRequest, newArpInfo } from "../../src/encap/arp.js";
import { internetChecksum } from "../../src/encap/checksum.js";
import { ethernetParse, newEthernetInfo } from "../../src/encap/ethernet.js";
import { icmpParse, icmpWriteError, newIcmpInfo } from "../../src/encap/icmp.js";
import { DfPolicy, ipipDecap, ipipEncap, newIpipInfo } from "../../src/encap/ipip.js";
import {
  IPPROTO_TCP,
  IPPROTO_UDP,
  ipv4DecrementTtl,
  ipv4Parse,
  ipv4PseudoHeaderSum,
  newIpv4Info,
} from "../../src/encap/ipv4.js";
import {
  newOuterInfo,
  newOuterParams,
  outerDecapUdp,
  outerEncapUdp,
} from "../../src/encap/outer.js";
import { newTcpInfo, tcpChecksumOk, tcpParse } from "../../src/encap/tcp.js";
import { newUdpInfo, udpChecksumOk, udpParse } from "../../src/encap/udp.js";
import {
  newVxlanInfo,
  vxlanDecap,
  vxlanEncapL2,
  vxlanEncapL3,
  vxlanEncapL3Template,
  vxlanSourcePort,
  vxlanWriteL3Template,
} from "../../src/encap/vxlan.js";
import {
  HEADROOM,
  innerIp,
  NODE_A,
  NODE_B,
  POD_A,
  POD_B,
  VTEP_A,
  VTEP_B,
} from "../fixtures/packets.js";

const eth = newEthernetInfo();
const ip = newIpv4Info();
const udp = newUdpInfo();
const tcp = newTcpInfo();
const icmp = newIcmpInfo();
const arp = newArpInfo();
const vx = newVxlanInfo();
const ipip = newIpipInfo();
const out = newOuterInfo();
const params = newOuterParams();
Object.assign(params, { srcIp: NODE_A, dstIp: NODE_B, srcPort: 40000, dstPort: 4789 });
params.udpChecksum = true;

const u = innerIp(17, 36);
const tc = innerIp(6, 36);
const ii = innerIp(1, 36);
const err = Buffer.alloc(200);
const arpBuf = Buffer.alloc(28);
const tpl = Buffer.alloc(22);
vxlanWriteL3Template(tpl, 0, 7, VTEP_A, VTEP_B);

// Small ints only: a module-level double would itself allocate per write.
let acc = 0;

// The writers' parameter objects, owned by the caller as the dataplane owns its own.
const ipipParams = { src: NODE_A, dst: NODE_B, ttl: -1, tos: -1, df: DfPolicy.Copy, id: 5 };
const icmpParams = { type: 3, code: 4, mtu: 1400, from: NODE_A, ttl: 64, id: 0 };

function round(): void {
  // VXLAN L3 encap + full outer (raw path) + decap back down to L4.
  let off = vxlanEncapL3(u.buf, HEADROOM, u.len, 7, VTEP_A, VTEP_B);
  acc ^= vxlanEncapL3Template(u.buf, HEADROOM, u.len, tpl, 0);
  acc ^= vxlanSourcePort(u.buf, off + 8, u.len + 14, 32768, 60998);
  const start = outerEncapUdp(u.buf, off, u.len + 22, params);
  acc ^= outerDecapUdp(u.buf, start, u.len + 64, out);
  acc ^= vxlanDecap(u.buf, out.payloadOff, out.payloadLen, vx);
  acc ^= ethernetParse(u.buf, vx.innerOff, vx.innerLen, eth);
  acc ^= ipv4Parse(u.buf, eth.payloadOff, eth.payloadLen, ip);
  acc ^= udpParse(u.buf, ip.payloadOff, ip.payloadLen, udp);
  const udpSum = ipv4PseudoHeaderSum(u.buf, eth.payloadOff, IPPROTO_UDP, udp.length);
  acc ^= udpChecksumOk(u.buf, ip.payloadOff, udp.length, udpSum) ? 1 : 0;
  // VXLAN L2 on the same inner frame.
  off = vxlanEncapL2(u.buf, vx.innerOff, 9);
  acc ^= vxlanDecap(u.buf, off, u.len + 22, vx);
  // IPIP with TCP inside.
  off = ipipEncap(tc.buf, HEADROOM, tc.len, ipipParams);
  acc ^= ipipDecap(tc.buf, off, tc.len + 20, ipip);
  acc ^= tcpParse(tc.buf, ipip.inner.payloadOff, ipip.inner.payloadLen, tcp);
  const tcpLen = ipip.inner.payloadLen;
  const tcpSum = ipv4PseudoHeaderSum(tc.buf, ipip.innerOff, IPPROTO_TCP, tcpLen);
  acc ^= tcpChecksumOk(tc.buf, ipip.inner.payloadOff, tcpLen, tcpSum) ? 1 : 0;
  // ICMP frag-needed answer and its parse; TTL decrement; ARP proxy reply.
  const n = icmpWriteError(err, 0, ii.buf, HEADROOM, ii.len, icmpParams);
  acc ^= ipv4Parse(err, 0, n, ip) ^ icmpParse(err, 20, n - 20, icmp);
  ii.buf[HEADROOM + 8] = 64;
  acc ^= ipv4DecrementTtl(ii.buf, HEADROOM);
  arpWriteRequest(arpBuf, 0, VTEP_A, POD_A, POD_B);
  arpRequestToReply(arpBuf, 0, VTEP_B);
  acc ^= arpParse(arpBuf, 0, 28, arp);
  acc ^= internetChecksum(u.buf, HEADROOM, u.len) & 1;
}

t.test("no garbage collection over 1 M rounds of every format", async (t) => {
  for (let i = 0; i < 50_000; i++) round(); // let the optimizing compiler settle
  let gcs = 0;
  const obs = new PerformanceObserver((list) => {
    gcs += list.getEntries().length;
  });
  obs.observe({ entryTypes: ["gc"] });
  await new Promise((r) => setTimeout(r, 20));
  gcs = 0;
  const ROUNDS = 1_000_000;
  const t0 = performance.now();
  for (let i = 0; i < ROUNDS; i++) round();
  const ms = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 50));
  obs.disconnect();
  t.equal(gcs, 0, `GC events during ${ROUNDS} rounds (${ms.toFixed(0)} ms)`);
  t.equal(acc & ~0xffff, 0);
});
