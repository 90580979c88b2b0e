// The plugin hosted in a long-lived process (the node agent): the native shim forwards
// each invocation here over a Unix socket, which saves the ~60 ms of a Node start.
//
// Framing (the shim only moves bytes; every decision is made here):
//   request:  u32be envLen | env bytes ("KEY=VALUE\0" repeated) | u32be stdinLen | stdin
//   reply:    u32be exit code | stdout bytes until the server closes the connection
import { chmodSync, mkdirSync, rmSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type Logger, silentLogger } from "./log.js";
import { handleCni } from "./plugin.js";

const MAX_FRAME = 4 << 20;
/** How long a stop waits for requests in flight (an ADD takes ~10 ms; the shim's wait is unbounded). */
const DRAIN_MS = 5000;

export interface CniServerOptions {
  socket: string;
  stateFile?: string;
  log?: Logger;
}

/** Split the request once both frames are in; undefined while more bytes are needed. */
function decodeRequest(
  buf: Buffer,
): { env: Record<string, string>; stdin: string } | undefined | "bad" {
  if (buf.length < 4) return undefined;
  const envLen = buf.readUInt32BE(0);
  if (envLen > MAX_FRAME) return "bad";
  if (buf.length < 8 + envLen) return undefined;
  const stdinLen = buf.readUInt32BE(4 + envLen);
  if (stdinLen > MAX_FRAME) return "bad";
  if (buf.length < 8 + envLen + stdinLen) return undefined;
  const env: Record<string, string> = {};
  for (const kv of buf
    .subarray(4, 4 + envLen)
    .toString("utf8")
    .split("\0")) {
    const eq = kv.indexOf("=");
    if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return { env, stdin: buf.subarray(8 + envLen, 8 + envLen + stdinLen).toString("utf8") };
}

export async function startCniServer(opts: CniServerOptions): Promise<{ close(): Promise<void> }> {
  const log = opts.log ?? silentLogger;
  const sockets = new Set<Socket>();
  // Requests being served: a stop (SIGTERM) lets them finish and answer, so the shim
  // does not run a half-done ADD again on its slow path, racing this one.
  const inflight = new Set<Promise<void>>();
  const serve = (sock: Socket) => {
    sockets.add(sock);
    sock.once("close", () => sockets.delete(sock));
    sock.on("error", () => sock.destroy());
    let buf = Buffer.alloc(0);
    let started = false;
    sock.on("data", (chunk: Buffer) => {
      if (started) return;
      buf = Buffer.concat([buf, chunk]);
      const req = decodeRequest(buf);
      if (req === undefined) return;
      started = true;
      if (req === "bad") {
        sock.destroy();
        return;
      }
      const served = handleCni(req.env, req.stdin, { stateFile: opts.stateFile, log }).then(
        (reply) => {
          const head = Buffer.alloc(4);
          head.writeUInt32BE(reply.code);
          sock.end(Buffer.concat([head, Buffer.from(reply.stdout)]));
        },
      );
      inflight.add(served);
      void served.finally(() => inflight.delete(served));
    });
  };
  mkdirSync(dirname(opts.socket), { recursive: true, mode: 0o700 });
  rmSync(opts.socket, { force: true });
  // allowHalfOpen: the shim shuts its write side after the request; the reply still
  // has to go out on ours.
  const server = createServer({ allowHalfOpen: true }, serve);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.socket, () => resolve());
  });
  // The socket runs ADDs as root on behalf of whoever connects: root only.
  chmodSync(opts.socket, 0o600);
  log.info({ socket: opts.socket }, "CNI server listening");
  return {
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.race([
        Promise.allSettled([...inflight]),
        sleep(DRAIN_MS, undefined, { ref: false }),
      ]);
      for (const s of sockets) s.end();
      await closed;
      rmSync(opts.socket, { force: true });
    },
  };
}
