// Public surface of the forwarding tables, for src/dataplane, src/control and src/cli.

export { type Clock, monotonicClock } from "./clock.js";
export { TableError, type TableErrorCode } from "./errors.js";
export {
  DEFAULT_AGEING_MS,
  DEFAULT_VXLAN_PORT,
  Fdb,
  FdbEntry,
  type FdbEntryOptions,
  type FdbJson,
  type FdbOptions,
  type FdbShowOptions,
  Learn,
  type LearnResult,
} from "./fdb.js";
export {
  type Ipv4Input,
  type MacInput,
  parsePrefix,
  toIpv4,
  toMac,
  toPrefix,
} from "./input.js";
export {
  Confirm,
  type ConfirmResult,
  NeighEntry,
  type NeighJson,
  type NeighOptions,
  type NeighShowOptions,
  NeighTable,
  Nud,
  type NudState,
} from "./neigh.js";
export {
  formatRoute,
  Route,
  type RouteJson,
  type RouteSpec,
  RouteTable,
  routeJson,
  showPrefix,
} from "./route.js";
