// The device and socket layer: slab + batches, TUN/TAP devices, UDP and raw sockets,
// network namespaces and iproute2 configuration.
export { Batch } from "./batch.js";
export {
  Device,
  type DeviceKind,
  type DeviceOptions,
  TUN_F,
  VNET_HDR_LEN,
  validateIfName,
} from "./device.js";
export {
  type BatchHandler,
  type IoCounters,
  IoEndpoint,
  type IoErrorHandler,
  type PmtuHandler,
  STAT,
} from "./io.js";
export type { ErrnoError } from "./native.js";
export { withNetns } from "./netns.js";
export { type OffloadProbe, probeOffloads } from "./probe.js";
export { type RawOptions, RawSocket } from "./raw.js";
export { Slab, type SlabOptions } from "./slab.js";
export type { PmtuDiscMode } from "./sockopt.js";
export { probeUdpGso, type UdpGsoSupport, type UdpOptions, UdpSocket } from "./udp.js";
