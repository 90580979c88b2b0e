// The deployment files, as far as this machine can check them (no container daemon, no
// cluster): the systemd unit passes `systemd-analyze verify` and restarts on failure;
// the Kubernetes manifest parses and gives a node what the agent needs (host network,
// privileges, /dev/net/tun, /run/netns, the CNI dirs, install-cni first, one config for
// every node that the agent's schema accepts); the Dockerfile installs the npm tarball.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t, { type Test } from "tap";
import { parse, parseAllDocuments } from "yaml";
import { parseAgentConfig } from "../../src/control/config.js";
import { parseListenAddress } from "../../src/dataplane/metrics.js";
import { run } from "../../src/system/exec.js";
import { REPO } from "../fixtures/vxtun.js";

const DEPLOY = join(REPO, "deploy");
const read = (f: string) => readFileSync(join(DEPLOY, f), "utf8");

/** The agent config as every node reads it: the node's address comes from outside. */
function checkAgentConfig(t: Test, text: string, where: string) {
  const raw = parse(text) as Record<string, unknown>;
  for (const perNode of ["name", "local", "peers", "device"]) {
    t.notOk(perNode in raw, `${where}: no per-node key ${perNode}`);
  }
  t.doesNotThrow(
    () => parseAgentConfig({ ...raw, local: { address: "192.0.2.1" } }, where),
    `${where}: the agent's schema accepts it`,
  );
  return raw;
}

t.test("systemd unit: verify passes, Restart=on-failure, the config it names", async (t) => {
  const unit = read("systemd/vxtun-agent.service");
  t.match(unit, /^Restart=on-failure$/m);
  t.match(unit, /^ExecStart=\/usr\/local\/bin\/vxtun agent --config \/etc\/vxtun\/agent\.yaml$/m);
  t.match(unit, /^WantedBy=multi-user\.target$/m);
  const which = await run(["systemd-analyze", "--version"]);
  if (which.code !== 0) {
    t.comment("skipped verify: systemd-analyze is not installed (Debian: systemd)");
  } else {
    // verify wants ExecStart's program to exist: this checkout's bin/vxtun.js stands in
    // for the installed /usr/local/bin/vxtun.
    const dir = mkdtempSync(join(tmpdir(), "vxtun-unit-"));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const copy = join(dir, "vxtun-agent.service");
    writeFileSync(copy, unit.replace("/usr/local/bin/vxtun", join(REPO, "bin/vxtun.js")));
    const r = await run(["systemd-analyze", "verify", copy]);
    t.equal(r.code, 0, "systemd-analyze verify", { stderr: r.stderr });
    t.equal(r.stderr.trim(), "", "no warnings");
  }
  checkAgentConfig(t, read("systemd/agent.yaml"), "deploy/systemd/agent.yaml");
});

interface Mount {
  name: string;
  mountPath: string;
  mountPropagation?: string;
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  securityContext?: { privileged?: boolean };
  volumeMounts: Mount[];
  readinessProbe?: { httpGet?: { path: string; port: number } };
  livenessProbe?: { httpGet?: { path: string } };
}
interface Volume {
  name: string;
  hostPath?: { path: string; type?: string };
  configMap?: { name: string };
}

t.test("DaemonSet + ConfigMap: what a node needs", async (t) => {
  const docs = parseAllDocuments(read("kubernetes/vxtun.yaml"));
  for (const d of docs) t.same(d.errors, [], "parses");
  const objs = docs.map((d) => d.toJS()) as {
    kind: string;
    metadata: { name: string; namespace?: string };
    [k: string]: unknown;
  }[];
  const ds = objs.find((o) => o.kind === "DaemonSet") as unknown as {
    metadata: { namespace: string };
    spec: {
      template: {
        spec: {
          hostNetwork: boolean;
          tolerations: { operator: string }[];
          initContainers: Container[];
          containers: Container[];
          volumes: Volume[];
        };
      };
    };
  };
  const cm = objs.find((o) => o.kind === "ConfigMap") as unknown as {
    metadata: { name: string; namespace: string };
    data: Record<string, string>;
  };
  t.ok(ds && cm, "a DaemonSet and a ConfigMap");
  t.equal(cm.metadata.namespace, ds.metadata.namespace, "in one namespace");
  const pod = ds.spec.template.spec;
  t.equal(pod.hostNetwork, true, "host network: the overlay is the node's");
  t.ok(
    pod.tolerations.some((x) => x.operator === "Exists"),
    "tolerates every taint (every node)",
  );
  const volumes = new Map(pod.volumes.map((v) => [v.name, v]));
  const hostPathOf = (c: Container, mountPath: string) => {
    const m = c.volumeMounts.find((m) => m.mountPath === mountPath);
    return (
      m && { path: volumes.get(m.name)?.hostPath?.path, mount: m, volume: volumes.get(m.name) }
    );
  };
  for (const c of [...pod.initContainers, ...pod.containers]) {
    for (const m of c.volumeMounts) t.ok(volumes.has(m.name), `${c.name}: volume ${m.name} exists`);
  }

  const [init] = pod.initContainers;
  t.match(init.command, ["vxtun", "install-cni"], "init container installs the CNI plugin");
  const flag = (f: string) => init.command?.[init.command.indexOf(f) + 1] ?? "";
  t.equal(hostPathOf(init, flag("--bin-dir"))?.path, "/opt/cni/bin", "--bin-dir is the host's");
  t.equal(hostPathOf(init, flag("--conf-dir"))?.path, "/etc/cni/net.d", "--conf-dir is the host's");

  const agent = pod.containers.find((c) => c.name === "agent") as Container;
  t.equal(agent.image, init.image, "one image for both");
  t.equal(agent.securityContext?.privileged, true, "privileged");
  t.match(hostPathOf(agent, "/dev/net/tun"), {
    path: "/dev/net/tun",
    volume: { hostPath: { type: "CharDevice" } },
  });
  t.match(
    hostPathOf(agent, "/run/netns"),
    { path: "/run/netns", mount: { mountPropagation: "HostToContainer" } },
    "pod namespaces the runtime creates later are seen",
  );
  t.equal(
    hostPathOf(agent, "/run/vxtun")?.path,
    "/run/vxtun",
    "sockets shared with the host's shim",
  );
  t.equal(
    hostPathOf(agent, "/var/lib/vxtun")?.path,
    "/var/lib/vxtun",
    "the lease survives restarts",
  );
  t.equal(hostPathOf(agent, "/opt/cni/bin")?.path, "/opt/cni/bin", "IPAM plugins for delegation");
  t.equal(hostPathOf(agent, "/var/lib/cni")?.path, "/var/lib/cni", "host-local's allocations");
  const env = agent.env?.find((e) => e.name === "VXTUN_LOCAL_ADDRESS");
  t.equal(env?.valueFrom?.fieldRef?.fieldPath, "status.hostIP", "the node's address per node");

  // The config: mounted from the ConfigMap where the agent's --config looks.
  const configFile = agent.args?.[agent.args.indexOf("--config") + 1] ?? "";
  const configMount = agent.volumeMounts.find((m) => configFile.startsWith(`${m.mountPath}/`));
  t.equal(volumes.get(configMount?.name ?? "")?.configMap?.name, cm.metadata.name);
  const key = configFile.slice((configMount?.mountPath.length ?? 0) + 1);
  t.ok(cm.data[key], `the ConfigMap has ${key}`);
  const cfg = checkAgentConfig(t, cm.data[key], "ConfigMap agent.yaml");
  const { port } = parseListenAddress((cfg.metrics as { address: string }).address);
  t.equal(agent.readinessProbe?.httpGet?.path, "/healthz", "ready when /healthz says so");
  t.equal(agent.readinessProbe?.httpGet?.port, port, "on the exporter's port");
  t.notOk(agent.livenessProbe?.httpGet?.path === "/healthz", "a store outage restarts nothing");
});

t.test("Dockerfile: the image is built from the npm tarball", async (t) => {
  const df = read("Dockerfile");
  t.match(df, /^FROM node:20-bookworm-slim AS build$/m);
  t.match(df, /^COPY \$\{TARBALL\} \/tmp\/vxtun\.tgz$/m);
  t.match(df, /npm install -g --prefix \/opt\/vxtun \/tmp\/vxtun\.tgz/);
  t.notMatch(df, /^COPY (src|dist|package\.json)/m, "nothing from a checkout");
  t.match(df, /iproute2/, "the run stage has iproute2 (ip, bridge)");
  const { version } = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8"));
  t.match(
    df,
    new RegExp(`TARBALL=vxtun-${version.replace(/\./g, "\\.")}\\.tgz`),
    "current version",
  );
  const images = [...read("kubernetes/vxtun.yaml").matchAll(/image: (\S+)/g)].map((m) => m[1]);
  t.ok(images.length > 0 && images.every((i) => i === `vxtun:${version}`), "manifest uses it");
  // The package ships deploy/ (package.json files).
  const pkg = execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts", REPO], {
    encoding: "utf8",
  });
  const files = (JSON.parse(pkg) as { files: { path: string }[] }[])[0].files.map((f) => f.path);
  for (const f of [
    "deploy/Dockerfile",
    "deploy/kubernetes/vxtun.yaml",
    "deploy/systemd/vxtun-agent.service",
  ]) {
    t.ok(files.includes(f), `the package ships ${f}`);
  }
});
