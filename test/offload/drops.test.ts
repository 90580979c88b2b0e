// Packets the Forwarder refuses are counted under a reason that says what was wrong
// (src/encap/drop.ts), and `vxtun stats` prints it by that name: a virtio_net_hdr the
// device should not have sent, and a learned MAC that a static FDB entry places
// elsewhere (vxlan-l2).
import t from "tap";
import { MODE_VXLAN_L2 } from "../../src/dataplane/forwarder.js";
import { formatStats } from "../../src/dataplane/stats.js";
import { writeMac } from "../../src/encap/addr.js";
import { write16 } from "../../src/encap/bytes.js";
import { vxlanWrite } from "../../src/encap/vxlan.js";
import { Batch } from "../../src/io/batch.js";
import {
  newVnetHeader,
  VNET_GSO_NONE,
  VNET_GSO_UDP,
  VNET_LEN,
  type VnetHeader,
  vnetRead,
  vnetWrite,
} from "../../src/tun/vnet.js";
import { forwarderRig, MAC_B, MSS, NODE_B } from "../fixtures/forwarder-rig.js";

t.test("a malformed virtio_net_hdr is dropped under its own name", async (t) => {
  const rig = forwarderRig();
  const dev = new Batch(64);
  /** The rig's TSO super-packet, its virtio_net_hdr changed by `edit`, `times` times. */
  const bad = (edit: Partial<VnetHeader>, times: number) => {
    for (let i = 0; i < times; i++) {
      const slot = rig.slab.alloc();
      const len = rig.superPacket(slot, 1, 10 * MSS);
      const at = rig.slab.dataOffset(slot);
      const h = newVnetHeader();
      vnetRead(rig.u8, at - VNET_LEN, h);
      vnetWrite(rig.u8, at - VNET_LEN, { ...h, ...edit });
      dev.push(slot, at, len);
    }
  };
  // A plain packet whose checksum would land past its end.
  bad({ gsoType: VNET_GSO_NONE, gsoSize: 0, csumStart: 60000 }, 1);
  // UFO (the old UDP fragmentation offload), which no device is offered.
  bad({ gsoType: VNET_GSO_UDP }, 2);
  // A super-packet without a segment size.
  bad({ gsoSize: 0 }, 3);
  rig.fwd.fromDevice(dev);
  const snap = rig.stats.snapshot();
  t.equal(snap.drops.vnet_bad_csum_offset, 1, "checksum offset outside the packet");
  t.equal(snap.drops.vnet_bad_gso_type, 2, "GSO type not offered");
  t.equal(snap.drops.vnet_bad_gso_size, 3, "gso_size 0");
  t.equal(snap.drops.ipv4_truncated, 0, "none of them counted as a truncated IPv4 header");
  t.equal(rig.stats.totalDrops(), 6, "nothing else dropped");
  const text = formatStats(snap);
  t.match(text, /vnet_bad_csum_offset\s+1\n/, "`vxtun stats` names them");
  t.match(text, /vnet_bad_gso_type\s+2\n/);
  t.match(text, /vnet_bad_gso_size\s+3/);
});

t.test("vxlan-l2: a frame from a MAC that a static FDB entry places elsewhere", async (t) => {
  const rig = forwarderRig({ mode: MODE_VXLAN_L2, learning: true });
  const rx = new Batch(64);
  const from = (remote: number, n: number) => {
    for (let i = 0; i < n; i++) {
      const slot = rig.slab.alloc();
      const at = rig.slab.dataOffset(slot);
      // VXLAN (VNI 1) + an Ethernet frame from MAC_B (static at NODE_B) + 46 bytes.
      vxlanWrite(rig.u8, at, 1);
      writeMac(rig.u8, at + 8, 0x020000000101);
      writeMac(rig.u8, at + 14, MAC_B);
      write16(rig.u8, at + 20, 0x88b5);
      rx.push(slot, at, 8 + 14 + 46, remote, 8472);
    }
  };
  from(NODE_B + 1, 2); // another node claims MAC_B
  from(NODE_B, 1); // its own node: delivered
  rig.fwd.fromUnderlay(rx);
  const snap = rig.stats.snapshot();
  t.equal(snap.drops.fdb_static_conflict, 2, "counted as a static FDB conflict");
  t.equal(snap.drops.peer_not_allowed, 0, "not as a peer outside the allow list");
  t.equal(snap.counters.decap_packets, 1, "the frame from MAC_B's own node went through");
  t.match(formatStats(snap), /fdb_static_conflict\s+2/, "`vxtun stats` names it");
});
