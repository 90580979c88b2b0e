// The classic BPF assembler (src/underlay/bpf.ts): struct sock_filter encoding and jump
// resolution. What the ipip queue filter accepts is proven against the kernel in
// test/dataplane/queues.root.test.ts; here, that it encodes and refuses bad jumps.
import t from "tap";
import { ipipQueueFilter } from "../../src/dataplane/steer.js";
import { BPF, BpfProgram } from "../../src/underlay/bpf.js";

t.test("instructions encode as struct sock_filter, jumps relative to the next", (t) => {
  const p = new BpfProgram()
    .op(BPF.LD | BPF.W | BPF.LEN)
    .jump(BPF.JGE | BPF.K, 60, "ok", "no")
    .label("ok")
    .op(BPF.RET | BPF.K, 0x40000)
    .label("no")
    .op(BPF.RET | BPF.K, 0);
  const b = p.encode();
  t.equal(b.length, 4 * 8);
  const dv = new DataView(b.buffer);
  t.equal(dv.getUint16(0, true), 0x80, "ld len");
  t.equal(dv.getUint16(8, true), 0x35, "jge #k");
  t.equal(b[10], 0, "jt: the next instruction");
  t.equal(b[11], 1, "jf: one further");
  t.equal(dv.getUint32(12, true), 60);
  t.equal(dv.getUint16(16, true), 0x06, "ret #k");
  t.equal(dv.getUint32(20, true), 0x40000);
  t.end();
});

t.test("a jump backwards or to nowhere is refused", (t) => {
  const back = new BpfProgram().label("top").jump(BPF.JEQ | BPF.K, 0, "top", "top");
  t.throws(() => back.encode(), /not a short forward jump/);
  const nowhere = new BpfProgram().jump(BPF.JEQ | BPF.K, 0, "x", "y").op(BPF.RET | BPF.K, 0);
  t.throws(() => nowhere.encode(), /not a short forward jump/);
  t.end();
});

t.test("the ipip queue filter: one program per queue, differing only in its index", (t) => {
  const a = ipipQueueFilter(0, 3).encode();
  const b = ipipQueueFilter(2, 3).encode();
  t.equal(a.length, b.length);
  const diff = [...a].map((x, i) => (x === b[i] ? -1 : Math.floor(i / 8))).filter((i) => i >= 0);
  // The jeq #index and the "too short: queue 0 keeps it" return.
  t.same([...new Set(diff)].length, 2, "two instructions differ");
  t.throws(() => ipipQueueFilter(3, 3), RangeError);
  t.throws(() => ipipQueueFilter(0, 1), RangeError);
  t.end();
});
