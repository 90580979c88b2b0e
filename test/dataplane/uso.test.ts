// USO through the overlay: an application in node 1 sends with UDP_SEGMENT (one
// sendmsg, 40 datagrams); the TUN hands vxtun the whole run (USO4 offload), vxtun cuts it
// into the sender's datagrams and node 2 receives every one, intact and in size.
import t from "tap";
import { NetnsLab, skipUnlessRoot } from "../../src/lab/netns.js";
import { vxtunPair } from "../lib/pair.js";

const PY = "/usr/bin/python3";
const SIZE = 1000;
const PER_SEND = 40;
const SENDS = 5;

t.test("UDP_SEGMENT runs from a pod reach the peer as the sender's datagrams", async (t) => {
  if (skipUnlessRoot(t)) return;
  const lab = await NetnsLab.create(t);
  const { nodes, procs } = await vxtunPair(lab);
  const info = (await procs[0].call("info")) as { offload: { tunOffloads: string[] } };
  if (!info.offload.tunOffloads.includes("uso4")) {
    t.plan(0, "this kernel's TUN does not take USO4|USO6");
    return;
  }
  const receiver = lab.spawn(nodes[1].ns, [
    PY,
    "-c",
    `import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(("10.244.2.1", 5555))
s.settimeout(3)
n = ok = 0
try:
    while n < ${PER_SEND * SENDS}:
        d = s.recv(65535)
        n += 1
        ok += len(d) == ${SIZE} and d == bytes([d[0]]) * ${SIZE}
except socket.timeout:
    pass
print(n, ok)`,
  ]);
  let out = "";
  receiver.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise((r) => receiver.once("exit", r));
  await new Promise((r) => setTimeout(r, 300));
  const send = await lab.exec(nodes[0].ns, [
    PY,
    "-c",
    `import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.244.1.1", 0))
s.setsockopt(socket.SOL_UDP, 103, ${SIZE})  # UDP_SEGMENT
for k in range(${SENDS}):
    run = b"".join(bytes([(k * ${PER_SEND} + i) % 251]) * ${SIZE} for i in range(${PER_SEND}))
    s.sendto(run, ("10.244.2.1", 5555))
    time.sleep(0.05)`,
  ]);
  t.equal(send.code, 0, `sent with UDP_SEGMENT ${send.stderr}`);
  await exited;
  const [n, ok] = out.trim().split(/\s+/).map(Number);
  t.equal(n, PER_SEND * SENDS, `node 2 received ${n} datagrams`);
  t.equal(ok, PER_SEND * SENDS, `each ${SIZE} bytes and intact`);
  const s = (await procs[0].call("stats")) as { counters: Record<string, number> };
  t.ok(
    s.counters.uso_superpackets >= 1,
    `vxtun took UDP super-packets (${s.counters.uso_superpackets})`,
  );
  t.equal(
    s.counters.uso_segments,
    s.counters.uso_superpackets * PER_SEND,
    "cut at the sender's size",
  );
});
