// The control socket's server: newline-delimited JSON over a Unix stream socket (mode
// 0600, root only), one request and one reply per line (wire format: client.ts). Kept
// deliberately small: anything a client can ask for is a verb of verbs.ts, and its
// arguments are checked against that verb before the handler sees them.
import { chmodSync, mkdirSync, rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import { checkArgs } from "./args.js";
import type { ControlReply, ControlRequest } from "./client.js";
import { UserError } from "./errors.js";
import { type Handlers, isVerb } from "./verbs.js";

export class ControlServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(
    readonly path: string,
    private readonly handlers: Handlers,
  ) {}

  async listen(): Promise<void> {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    await this.refuseIfLive();
    rmSync(this.path, { force: true });
    const server = createServer((sock) => this.serve(sock));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.path, () => resolve());
    });
    chmodSync(this.path, 0o600);
  }

  /** Two instances with one socket path would steal each other's socket: refuse. */
  private async refuseIfLive(): Promise<void> {
    const live = await new Promise<boolean>((resolve) => {
      const s = connect(this.path);
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (live) {
      throw new UserError(
        `control socket ${this.path} is in use by another vxtun instance: give this one another name or paths.socket`,
      );
    }
  }

  private serve(sock: Socket): void {
    this.sockets.add(sock);
    sock.once("close", () => this.sockets.delete(sock));
    sock.on("error", () => sock.destroy());
    let pending = "";
    sock.setEncoding("utf8");
    sock.on("data", (chunk: string) => {
      pending += chunk;
      if (pending.length > 1 << 20) {
        sock.destroy();
        return;
      }
      let nl = pending.indexOf("\n");
      while (nl >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        void this.answer(line).then((reply) => {
          if (!sock.destroyed) sock.write(`${JSON.stringify(reply)}\n`);
        });
        nl = pending.indexOf("\n");
      }
    });
  }

  private async answer(line: string): Promise<ControlReply> {
    let req: ControlRequest;
    try {
      req = JSON.parse(line) as ControlRequest;
    } catch {
      return { ok: false, error: "request is not valid JSON" };
    }
    const op = req?.op;
    if (!isVerb(op)) return { ok: false, error: `unknown operation "${String(op)}"` };
    const handler = this.handlers[op];
    if (!handler) return { ok: false, error: `this instance does not serve "${op}"` };
    try {
      return { ok: true, result: await handler(checkArgs(op, req.args)) };
    } catch (e) {
      return { ok: false, error: (e as Error).message };
    }
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(this.path, { force: true });
  }
}
