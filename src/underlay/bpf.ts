// Classic BPF (the socket filter language of SO_ATTACH_FILTER, linux/filter.h), just
// enough to assemble a program in TypeScript: opcodes, an instruction list with named
// forward jump targets, and the 8-byte struct sock_filter encoding the addon passes to
// the kernel. What a program decides is the caller's (see src/dataplane/steer.ts).
import { native } from "../io/native.js";

// Instruction classes, sizes, modes, ALU ops and jumps (linux/bpf_common.h).
export const BPF = {
  LD: 0x00,
  LDX: 0x01,
  ST: 0x02,
  ALU: 0x04,
  JMP: 0x05,
  RET: 0x06,
  MISC: 0x07,
  W: 0x00,
  H: 0x08,
  B: 0x10,
  IMM: 0x00,
  ABS: 0x20,
  IND: 0x40,
  MEM: 0x60,
  LEN: 0x80,
  MSH: 0xa0,
  ADD: 0x00,
  LSH: 0x60,
  AND: 0x50,
  MOD: 0x90,
  JEQ: 0x10,
  JGE: 0x30,
  K: 0x00,
  X: 0x08,
  A: 0x10,
  TAX: 0x00,
  TXA: 0x80,
} as const;

interface Insn {
  code: number;
  k: number;
  /** Jump targets by label (conditional jumps), resolved in encode(). */
  jt?: string;
  jf?: string;
}

/** A program under construction: instructions, labels, then encode(). */
export class BpfProgram {
  private readonly insns: Insn[] = [];
  private readonly labels = new Map<string, number>();

  /** One instruction (no jump). */
  op(code: number, k = 0): this {
    this.insns.push({ code, k });
    return this;
  }

  /** A conditional jump on A (vs k): to `jt` when true, else to `jf` (labels ahead). */
  jump(code: number, k: number, jt: string, jf: string): this {
    this.insns.push({ code: BPF.JMP | code, k, jt, jf });
    return this;
  }

  /** The next instruction's label. */
  label(name: string): this {
    this.labels.set(name, this.insns.length);
    return this;
  }

  get length(): number {
    return this.insns.length;
  }

  /** struct sock_filter[]: u16 code, u8 jt, u8 jf, u32 k, little-endian (x86, arm64). */
  encode(): Uint8Array {
    const out = new Uint8Array(this.insns.length * 8);
    const dv = new DataView(out.buffer);
    this.insns.forEach((ins, i) => {
      const rel = (label: string | undefined): number => {
        if (label === undefined) return 0;
        const at = this.labels.get(label);
        if (at === undefined || at <= i || at - i - 1 > 255) {
          throw new Error(`bpf: jump to ${label} from ${i} is not a short forward jump`);
        }
        return at - i - 1;
      };
      dv.setUint16(i * 8, ins.code, true);
      dv.setUint8(i * 8 + 2, rel(ins.jt));
      dv.setUint8(i * 8 + 3, rel(ins.jf));
      dv.setUint32(i * 8 + 4, ins.k >>> 0, true);
    });
    return out;
  }
}

/** Attach `prog` to the socket `fd` (SO_ATTACH_FILTER); throws with the errno. */
export function attachFilter(fd: number, prog: BpfProgram, what: string): void {
  const r = native.attachFilter(fd, prog.encode());
  if (r < 0) throw new Error(`SO_ATTACH_FILTER (${what}) failed: errno ${-r}`);
}
