// One list of every reason a packet can be dropped, decode and dataplane alike, so
// counters are a flat array indexed by code and their names never drift apart.
// Numbers are appended only: they may be stored (counters, tests), names are API.

export enum Drop {
  None = 0,
  // Decode: link layer
  EthTruncated = 1,
  UnsupportedEthertype = 2,
  // Decode: IPv4
  Ipv4Truncated = 3,
  Ipv4BadVersion = 4,
  Ipv4BadIhl = 5,
  Ipv4BadTotalLength = 6,
  Ipv4BadChecksum = 7,
  Ipv4Fragment = 8,
  Ipv4BadProtocol = 9,
  // Decode: transport
  UdpTruncated = 10,
  UdpBadLength = 11,
  UdpBadChecksum = 12,
  TcpTruncated = 13,
  TcpBadOffset = 14,
  TcpBadChecksum = 15,
  IcmpTruncated = 16,
  IcmpBadChecksum = 17,
  // Decode: tunnels and ARP
  VxlanTruncated = 18,
  VxlanBadFlags = 19,
  IpipBadInner = 20,
  ArpTruncated = 21,
  ArpBadFormat = 22,
  ArpBadOp = 23,
  // Encode: the caller did not reserve enough room in front of / behind the packet
  NoHeadroom = 24,
  // Dataplane (reserved here so there is one list)
  NoRoute = 25,
  NoFdb = 26,
  NoNeigh = 27,
  TtlExpired = 28,
  TooBig = 29,
  PoolExhausted = 30,
  SendError = 31,
  PeerNotAllowed = 32,
  UnknownVni = 33,
  /** An IPv6 super-frame whose extension headers the segmenter cannot step over. */
  Ipv6ExtUnsupported = 34,
  /** An IPv6 header whose payload length runs past the packet. */
  Ipv6Truncated = 35,
  // The TUN/TAP's virtio_net_hdr (src/tun/vnet.ts)
  /** NEEDS_CSUM with a checksum start/offset outside the packet. */
  VnetBadCsumOffset = 36,
  /** A GSO type this mode is not offered (the device was not asked for it). */
  VnetBadGsoType = 37,
  /** A super-packet with gso_size 0. */
  VnetBadGsoSize = 38,
  // Learning
  /** vxlan-l2: a frame's source MAC is a static FDB entry at another node. */
  FdbStaticConflict = 39,
  // Decode: IPv6 (RFC 8200)
  Ipv6BadVersion = 40,
  /** Payload length 0 with a hop-by-hop header: a jumbogram (RFC 2675), never tunnelled. */
  Ipv6Jumbogram = 41,
  Icmp6Truncated = 42,
  Icmp6BadChecksum = 43,
  /** A neighbour solicitation or advertisement failing RFC 4861 §7.1 validation. */
  NdpInvalid = 44,
}

/** Stable snake_case counter names, indexed by `Drop` code. */
export const dropName: readonly string[] = Object.freeze([
  "none",
  "eth_truncated",
  "unsupported_ethertype",
  "ipv4_truncated",
  "ipv4_bad_version",
  "ipv4_bad_ihl",
  "ipv4_bad_total_length",
  "ipv4_bad_checksum",
  "ipv4_fragment",
  "ipv4_bad_protocol",
  "udp_truncated",
  "udp_bad_length",
  "udp_bad_checksum",
  "tcp_truncated",
  "tcp_bad_offset",
  "tcp_bad_checksum",
  "icmp_truncated",
  "icmp_bad_checksum",
  "vxlan_truncated",
  "vxlan_bad_flags",
  "ipip_bad_inner",
  "arp_truncated",
  "arp_bad_format",
  "arp_bad_op",
  "no_headroom",
  "no_route",
  "no_fdb",
  "no_neigh",
  "ttl_expired",
  "too_big",
  "pool_exhausted",
  "send_error",
  "peer_not_allowed",
  "unknown_vni",
  "ipv6_ext_unsupported",
  "ipv6_truncated",
  "vnet_bad_csum_offset",
  "vnet_bad_gso_type",
  "vnet_bad_gso_size",
  "fdb_static_conflict",
  "ipv6_bad_version",
  "ipv6_jumbogram",
  "icmp6_truncated",
  "icmp6_bad_checksum",
  "ndp_invalid",
]);

/** Number of codes; size counter arrays with it. */
export const DROP_COUNT = dropName.length;

/** True for 0 (accepted) and every defined reason; property tests use it. */
export function isDropCode(code: number): boolean {
  return Number.isInteger(code) && code >= 0 && code < DROP_COUNT;
}
