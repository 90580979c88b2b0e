import t from "tap";
import { parseMac } from "../../src/encap/addr.js";
import { Drop } from "../../src/encap/drop.js";
import {
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  ethernetParse,
  ethernetReplyHeader,
  ethernetWrite,
  ethernetWriteVlan,
  newEthernetInfo,
} from "../../src/encap/ethernet.js";
import { hex, toHex } from "../fixtures/hex.js";

// Built with scapy: Ether(dst=bcast, src=02:..:01)/Dot1Q(vlan=100, prio=5)/ARP(...)
const VLAN_FRAME = hex(`
  ffffffffffff 020000000001   # dst, src
  8100 a064                   # 802.1Q, PCP 5, VID 100
  0806                        # ARP
  0001080006040001 020000000001 0a000001 000000000000 0a000002`);

const UNTAGGED = hex("020000000002 020000000001 0800 4500");

t.test("deconstruct tagged", (t) => {
  const e = newEthernetInfo();
  t.equal(ethernetParse(VLAN_FRAME, 0, VLAN_FRAME.length, e), Drop.None);
  t.equal(e.dst, 0xffffffffffff);
  t.equal(e.src, parseMac("02:00:00:00:00:01"));
  t.equal(e.vlan, 100);
  t.equal(e.pcp, 5);
  t.equal(e.ethertype, ETHERTYPE_ARP);
  t.equal(e.payloadOff, 18);
  t.equal(e.payloadLen, 28);
  t.end();
});

t.test("deconstruct untagged at an offset", (t) => {
  const b = Buffer.concat([Buffer.alloc(5), UNTAGGED]);
  const e = newEthernetInfo();
  t.equal(ethernetParse(b, 5, UNTAGGED.length, e), Drop.None);
  t.equal(e.vlan, -1);
  t.equal(e.ethertype, ETHERTYPE_IPV4);
  t.equal(e.payloadOff, 19);
  t.equal(e.payloadLen, 2);
  t.end();
});

t.test("construct", (t) => {
  const b = Buffer.alloc(18);
  t.equal(
    ethernetWrite(b, 0, parseMac("02:00:00:00:00:02")!, parseMac("02:00:00:00:00:01")!, 0x0800),
    14,
  );
  t.equal(toHex(b, 0, 14), toHex(UNTAGGED, 0, 14));
  t.equal(
    ethernetWriteVlan(b, 0, 0xffffffffffff, parseMac("02:00:00:00:00:01")!, 100, 5, 0x0806),
    18,
  );
  t.equal(toHex(b), toHex(VLAN_FRAME, 0, 18));
  t.end();
});

t.test("reply header swaps", (t) => {
  const b = Buffer.from(UNTAGGED);
  ethernetReplyHeader(b, 0, 0x0a0b0c0d0e0f);
  t.equal(toHex(b, 0, 14), "0200000000010a0b0c0d0e0f0800");
  t.end();
});

t.test("drops", (t) => {
  const e = newEthernetInfo();
  t.equal(ethernetParse(UNTAGGED, 0, 13, e), Drop.EthTruncated);
  t.equal(ethernetParse(VLAN_FRAME, 0, 17, e), Drop.EthTruncated);
  const llc = Buffer.from(UNTAGGED);
  llc.writeUInt16BE(0x0026, 12); // 802.3 length (STP BPDU)
  t.equal(ethernetParse(llc, 0, llc.length, e), Drop.UnsupportedEthertype);
  const qinq = Buffer.from(VLAN_FRAME);
  qinq.writeUInt16BE(0x8100, 16);
  t.equal(ethernetParse(qinq, 0, qinq.length, e), Drop.UnsupportedEthertype);
  t.end();
});
