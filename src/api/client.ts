// The control socket's client, for the CLI, the lab, the CNI plugin's STATUS and
// tests. The wire format: a request is one line of JSON {"op": VERB, "args": {...}}, the
// reply one line {"ok": true, "result": ...} or {"ok": false, "error": "one line"}.
// Light on purpose (no verb table): the CNI plugin loads it on a slow path.
import { connect } from "node:net";
import { UserError } from "./errors.js";

export interface ControlRequest {
  op: string;
  args?: Record<string, unknown>;
}

export type ControlReply = { ok: true; result: unknown } | { ok: false; error: string };

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
