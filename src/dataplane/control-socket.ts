// The control socket: newline-delimited JSON over a Unix stream socket (mode 0600,
// root only), one request and one reply per line. Kept deliberately small: the CLI and
// the node agent are its only clients, and anything they can ask for is a named op.
import { chmodSync, mkdirSync, rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";

export interface ControlRequest {
  op: string;
  args?: Record<string, unknown>;
}

export type ControlReply = { ok: true; result: unknown } | { ok: false; error: string };

export type ControlHandler = (args: Record<string, unknown>) => unknown | Promise<unknown>;

/** Errors whose message is meant for the user as is (bad arguments, absent entries). */
export class UserError extends Error {}

export class ControlServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(
    readonly path: string,
    private readonly handlers: Record<string, ControlHandler>,
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
    const handler = typeof req?.op === "string" ? this.handlers[req.op] : undefined;
    if (!handler) return { ok: false, error: `unknown operation "${String(req?.op)}"` };
    try {
      return { ok: true, result: await handler(req.args ?? {}) };
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

/** One request to a running instance; rejects with a one-line message. */
export function controlCall(
  path: string,
  op: string,
  args: Record<string, unknown> = {},
  timeoutMs = 5000,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    let buf = "";
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer from ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.setEncoding("utf8");
    sock.once("connect", () => sock.write(`${JSON.stringify({ op, args })}\n`));
    sock.on("data", (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      clearTimeout(timer);
      sock.destroy();
      const reply = JSON.parse(buf.slice(0, nl)) as ControlReply;
      if (reply.ok) resolve(reply.result);
      else reject(new UserError(reply.error));
    });
    sock.once("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const hint =
        e.code === "ENOENT" || e.code === "ECONNREFUSED"
          ? `no vxtun instance at ${path}: start one with 'vxtun run --config FILE' or pass --socket`
          : `cannot reach ${path}: ${e.message}`;
      reject(new UserError(hint));
    });
  });
}
