// Which queue takes a received IPIP packet (ipip mode with io.queues > 1). UDP sockets
// share the VXLAN port with SO_REUSEPORT and the kernel picks one per outer 4-tuple; a
// raw IPPROTO_IPIP socket has nothing like it: every raw socket of the protocol gets a
// copy of every packet. So each queue's raw socket carries a classic BPF filter that
// accepts only its share: (inner source + inner destination + the first 4 bytes of the
// inner L4 header, i.e. TCP/UDP ports) mod queues == its index. One inner flow always
// lands on one queue (its order kept); exactly one filter accepts any packet.
// Packets too short to carry those bytes go to queue 0, whose decoder counts the drop.
import { BPF, BpfProgram } from "../underlay/bpf.js";

/** A filter return value that keeps the whole packet (longer than any IPv4 packet). */
const KEEP = 0x40000;

export function ipipQueueFilter(index: number, count: number): BpfProgram {
  if (!(count > 1 && index >= 0 && index < count)) {
    throw new RangeError(`queue ${index} of ${count}`);
  }
  const { LD, LDX, ST, ALU, RET, MISC, W, B, IND, MEM, LEN, MSH, ADD, LSH, AND, MOD } = BPF;
  const outerIhl = () => p.op(LDX | B | MSH, 0); // X = 4 * (packet[0] & 0xf)
  const p = new BpfProgram();
  // The outer header, a 20-byte inner header and 4 L4 bytes must be there.
  outerIhl()
    .op(MISC | BPF.TXA)
    .op(ALU | ADD | BPF.K, 24)
    .op(MISC | BPF.TAX)
    .op(LD | W | LEN)
    .jump(BPF.JGE | BPF.X, 0, "inner", "short")
    .label("inner");
  outerIhl()
    .op(LD | W | IND, 12) // inner source
    .op(ST, 0)
    .op(LD | W | IND, 16) // inner destination
    .op(ST, 1)
    .op(LD | B | IND, 0) // inner version/IHL: the L4 header starts at X + 4 * IHL
    .op(ALU | AND | BPF.K, 0x0f)
    .op(ALU | LSH | BPF.K, 2)
    .op(ALU | ADD | BPF.X)
    .op(ST, 2)
    .op(ALU | ADD | BPF.K, 4)
    .op(MISC | BPF.TAX)
    .op(LD | W | LEN)
    .jump(BPF.JGE | BPF.X, 0, "l4", "short")
    .label("l4")
    .op(LDX | W | MEM, 2)
    .op(LD | W | IND, 0) // source and destination port
    .op(LDX | W | MEM, 0)
    .op(ALU | ADD | BPF.X)
    .op(LDX | W | MEM, 1)
    .op(ALU | ADD | BPF.X)
    .op(ALU | MOD | BPF.K, count)
    .jump(BPF.JEQ | BPF.K, index, "keep", "drop")
    .label("short")
    .op(RET | BPF.K, index === 0 ? KEEP : 0)
    .label("keep")
    .op(RET | BPF.K, KEEP)
    .label("drop")
    .op(RET | BPF.K, 0);
  return p;
}
