// The agent against a secured etcd: TLS with a CA, server and client certificates made
// by openssl here, client certificates required, password auth enabled. Agents join and
// mesh. Then, while pods ping: the password is changed behind the agents' back and etcd
// restarted (their tokens die with it), then etcd comes back with a certificate from
// another CA. Each time every agent logs one line naming the problem and retries with
// backoff, forwarding goes on with the last known peers, and once etcd is right again
// they are healthy and watching.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { NetnsLab } from "../../src/lab/netns.js";
import { buildUnderlay } from "../../src/lab/underlay.js";
import {
  type AgentNode,
  meshComplete,
  startAgent,
  startAgents,
  storesWatching,
  tempDir,
  waitFor,
} from "../fixtures/agents.js";
import { ETCD_IP, LabEtcd, makePki, skipUnlessEtcd } from "../fixtures/etcd.js";

const AUTH_LINE = "etcd rejected the username or password (store.username, store.password)";
const TLS_LINE = /TLS with etcd failed[^"]*: check store\.caFile, store\.certFile, store\.keyFile/;

/** Warnings an agent logged since `from` (pino JSON lines), as "msg: err". */
function warnings(a: AgentNode, from: number): string[] {
  return a.proc
    .output()
    .slice(from)
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as { msg: string; err?: string; retryMs?: number })
    .filter((l) => l.err)
    .map((l) => `${l.msg}: ${l.err}`);
}

t.test("etcd with TLS and auth: join, wrong password, wrong CA, recovery", async (t) => {
  if (skipUnlessEtcd(t)) return;
  const dir = tempDir(t, "etcd-tls");
  const pki = await makePki(dir, "good", ETCD_IP);
  const other = await makePki(dir, "other", ETCD_IP);
  const lab = await NetnsLab.create(t);
  const { switchNs, nodes } = await buildUnderlay(lab, 3);
  const etcd = await LabEtcd.create(lab, switchNs, tempDir(t, "etcd-data"));
  etcd.client.tls = { ca: pki.ca, ...pki.client };
  const good = { ...pki.server, clientCa: pki.ca };
  await etcd.start(good);
  t.teardown(() => etcd.kill());
  await etcd.ctlOk(["user", "add", "root", "--new-user-password=first-pw", "--interactive=false"]);
  await etcd.ctlOk(["auth", "enable"]);
  t.match(
    (await etcd.ctl(["get", "/coreos.com/network/config"])).stderr,
    /user name|authentication|permission denied/i,
    "etcd refuses a client without a password",
  );
  etcd.client.user = "root:first-pw";

  const pwFile = join(dir, "etcd-password");
  writeFileSync(pwFile, "first-pw\n", { mode: 0o600 });
  const store = {
    type: "etcd",
    endpoints: [etcd.url],
    caFile: pki.ca,
    certFile: pki.client.cert,
    keyFile: pki.client.key,
    username: "root",
    passwordFile: pwFile,
  };
  const { agents, subnets } = await startAgents(t, lab, nodes.slice(0, 2), {
    store,
    leaseTtlSeconds: 60,
  });
  const ms = await waitFor("full mesh", () => meshComplete(agents, subnets), 3000);
  t.pass(`2 agents on etcd over TLS with auth: mesh complete ${ms} ms after the last join`);

  // A node given the wrong CA never gets past the store: it says why, and retries.
  const stray = await startAgent(t, lab, nodes[2], { store: { ...store, caFile: other.ca } }, 6000)
    .then(() => "started")
    .catch((e: Error) => e.message);
  const strayLines = stray.split("\n").filter((l) => l.includes("store unreachable, retrying"));
  t.comment(`n3 logged: ${strayLines[0]}`);
  t.ok(
    strayLines.length >= 3 && strayLines.every((l) => TLS_LINE.test(l)),
    `a wrong CA: every attempt (${strayLines.length} in 6 s) logs one line naming it`,
  );
  const [a1] = agents;
  const gw = (a: AgentNode) => subnets.get(a)!.replace(/0\/24$/, "1");
  // Pings at 5/s from n1's bridge to n2's until the end (SIGINT prints the summary).
  const ping = lab.spawn(a1.node.ns, ["ping", "-i", "0.2", "-W", "1", "-I", gw(a1), gw(agents[1])]);
  let pingOut = "";
  ping.stdout?.on("data", (d: Buffer) => {
    pingOut += d.toString();
  });
  const pingDone = new Promise((r) => ping.once("exit", r));

  // --- the password changes behind the agents' back; etcd restarts (tokens are gone)
  await etcd.ctlOk(["user", "passwd", "root", "--interactive=false"], "second-pw\n");
  etcd.client.user = "root:second-pw";
  const mark1 = agents.map((a) => a.proc.output().length);
  await etcd.kill();
  await etcd.start(good);
  await waitFor(
    "agents report the password",
    async () => agents.every((a, i) => warnings(a, mark1[i]).some((w) => w.endsWith(AUTH_LINE))),
    12_000,
    200,
  );
  for (const [i, a] of agents.entries()) {
    const w = warnings(a, mark1[i]);
    t.comment(`${a.node.name} logged: ${w.find((x) => x.endsWith(AUTH_LINE))}`);
    t.equal((await a.report()).store.ok, false, `${a.node.name}: store reported unhealthy`);
  }
  t.pass("wrong password: each agent logs one line naming it, and stays up");

  // --- etcd comes back with a certificate from another CA
  const mark2 = agents.map((a) => a.proc.output().length);
  await etcd.kill();
  etcd.client.tls = { ca: other.ca, ...pki.client };
  await etcd.start({ ...other.server, clientCa: pki.ca });
  await waitFor(
    "agents report the certificate, again and again",
    async () =>
      agents.every((a, i) => warnings(a, mark2[i]).filter((w) => TLS_LINE.test(w)).length >= 3),
    20_000,
    200,
  ).catch((e) => {
    t.comment(warnings(a1, mark2[0]).join("\n"));
    throw e;
  });
  const tlsLines = warnings(a1, mark2[0]).filter((w) => TLS_LINE.test(w));
  t.comment(`n1 logged: ${tlsLines[0]}`);
  t.ok(tlsLines.length >= 2, `n1 keeps retrying (${tlsLines.length} attempts logged)`);
  const retries = a1.proc
    .output()
    .slice(mark2[0])
    .split("\n")
    .filter((l) => l.includes('"retryMs"'))
    .map((l) => (JSON.parse(l) as { retryMs: number }).retryMs);
  t.ok(
    retries.length >= 2 && retries.at(-1)! > retries[0],
    `with backoff (retry delays ${retries.join(", ")} ms)`,
  );

  // --- put etcd right again: the agents heal by themselves
  await etcd.kill();
  etcd.client.tls = { ca: pki.ca, ...pki.client };
  await etcd.start(good);
  await etcd.ctlOk(["user", "passwd", "root", "--interactive=false"], "first-pw\n");
  const healed = await waitFor("agents healthy again", () => storesWatching(agents), 15_000, 200);
  t.pass(`etcd right again: agents healthy and watching ${healed} ms later`);
  ping.kill("SIGINT");
  await pingDone;
  const [sent, got] = (/(\d+) packets transmitted, (\d+) received/.exec(pingOut) ?? [])
    .slice(1)
    .map(Number);
  // The echo in flight when SIGINT came may count as lost.
  t.ok(sent >= 25 && got >= sent - 1, `pings through both failures: ${got}/${sent} answered`);
  t.ok(await meshComplete(agents, subnets), "mesh unchanged");
});
