// STATUS: ready when the agent has written the node state and the dataplane answers on
// its control socket; otherwise code 50 ("plugin not available") naming what is missing.
import type { NetConf } from "./config.js";
import { CniCode, CniError } from "./errors.js";
import { readNodeState } from "./node-state.js";

export async function cmdStatus(conf: NetConf): Promise<void> {
  let state: ReturnType<typeof readNodeState>;
  try {
    state = readNodeState(conf.stateFile);
  } catch (e) {
    throw new CniError(CniCode.notAvailable, (e as Error).message);
  }
  if (!state.dataplaneSocket) {
    throw new CniError(
      CniCode.notAvailable,
      `node state ${conf.stateFile} names no VXTUN_DATAPLANE_SOCKET`,
    );
  }
  // Imported lazily: ADD and DEL on the slow path never need the control-socket client.
  const { controlCall } = await import("../api/client.js");
  try {
    await controlCall(state.dataplaneSocket, "info", {}, 2000);
  } catch (e) {
    throw new CniError(
      CniCode.notAvailable,
      `vxtun dataplane at ${state.dataplaneSocket} does not answer`,
      (e as Error).message,
    );
  }
}
