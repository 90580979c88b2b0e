// The node bridge pods attach to, configured in the agent's own namespace (iproute2 with
// ns "" = here). Idempotent: a restarted agent finds it in place and only fixes it.
import { parseCidr, prefixMask } from "../encap/addr.js";
import * as ipr from "../system/iproute.js";

const HERE = "";

/** Create `name` if missing; give it exactly `cidr` among addresses in `network`; MTU; up. */
export async function ensureBridge(
  name: string,
  cidr: string,
  mtu: number,
  network: string,
): Promise<void> {
  const exists = await ipr.linkShow(HERE, name).then(
    () => true,
    () => false,
  );
  if (!exists) await ipr.linkAddBridge(HERE, name);
  await ipr.linkSetMtu(HERE, name, mtu);
  // An address from an earlier subnet of this node would route a stranger's pods here.
  const net = parseCidr(network)!;
  const [info] = await ipr.addrShow(HERE, name);
  for (const a of info?.addr_info ?? []) {
    if (a.family !== "inet") continue;
    const inNet = (parseCidrAddr(a.local) & prefixMask(net.len)) >>> 0 === net.addr;
    if (inNet && `${a.local}/${a.prefixlen}` !== cidr) {
      await ipr.addrDel(HERE, name, `${a.local}/${a.prefixlen}`);
    }
  }
  await ipr.addrReplace(HERE, name, cidr);
  await ipr.linkSetUp(HERE, name);
}

function parseCidrAddr(ip: string): number {
  return parseCidr(`${ip}/32`)?.addr ?? 0;
}
