// The sending half of Io: write() to a TUN/TAP (one packet per call), sendmmsg() to a
// socket, with UDP_SEGMENT/TOS/TTL control messages and gather lists on the fast path.
// The receiving half, the poll watcher and the object's life are in io.cc.
#include <netinet/ip.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "io.h"
#include "util.h"

namespace vxtun {

// write(off: Uint32Array, len: Uint32Array, from, count) -> consumed
// One write() per packet: a TUN fd takes exactly one packet per write (writev would
// glue iovecs into one packet). Returns how many of [from, from+count) were consumed
// (written, or dropped with a per-packet error that is counted); less than count means
// EAGAIN/ENOBUFS stopped us and the rest was not attempted.
Napi::Value Io::Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) return ThrowErrno(env, "write", EBADF);
  size_t nOff, nLen;
  uint32_t* off = TypedData<uint32_t>(env, info[0], napi_uint32_array, &nOff, "off");
  if (off == nullptr) return env.Undefined();
  uint32_t* len = TypedData<uint32_t>(env, info[1], napi_uint32_array, &nLen, "len");
  if (len == nullptr) return env.Undefined();
  int64_t from, count;
  if (!ArgInt(info, 2, &from, "from") || !ArgInt(info, 3, &count, "count")) return env.Undefined();
  if (from < 0 || count < 0 || static_cast<size_t>(from + count) > std::min(nOff, nLen))
    return ThrowType(env, "write: range outside the batch");
  stats_[kTxCalls]++;
  int64_t i = 0;
  while (i < count) {
    uint32_t o = off[from + i], l = len[from + i];
    ssize_t r;
    if (gCount_ != nullptr && static_cast<size_t>(from + i) < gEntries_ && gCount_[from + i] > 0) {
      // One packet from several ranges (a coalesced super-packet): writev, since a TUN
      // write is one packet however many iovecs it has.
      size_t used = 0;
      bool full = false;
      int64_t total = GatherInto(giov_.data(), giov_.size(), from + i, &used, &full);
      if (total < 0) {
        stats_[kTxErrors]++;
        i++;
        continue;
      }
      r = writev(fd_, giov_.data(), static_cast<int>(used));
    } else {
      if (!InSlab(o, l)) {
        stats_[kTxErrors]++;
        i++;
        continue;
      }
      r = write(fd_, slab_ + o, l);
    }
    if (r < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN) {
        stats_[kEagain]++;
        break;
      }
      if (err == ENOBUFS) {
        stats_[kEnobufs]++;
        break;
      }
      stats_[kTxErrors]++;
      // A detached device fails every write: stop; the reader reports the cause.
      if (TunFatal(err)) break;
      i++;
      continue;
    }
    stats_[kTxPackets]++;
    stats_[kTxBytes] += static_cast<double>(r);
    i++;
  }
  return Napi::Number::New(env, static_cast<double>(i));
}

// Message k of the next sendmmsg: one buffer, one IPv4 destination, no control data
// yet (Send leaves it empty; SendGso adds UDP_SEGMENT / TOS / TTL cmsgs).
struct msghdr& Io::PrepareMessage(uint32_t k, uint8_t* data, uint32_t len, uint32_t addr,
                                  uint32_t port) {
  iov_[k].iov_base = data;
  iov_[k].iov_len = len;
  msgLen_[k] = len;
  struct msghdr& h = msgs_[k].msg_hdr;
  if (family_ == AF_INET6) {
    // addr indexes the address table (DestOk checked it).
    struct sockaddr_in6& sa = sa6_[k];
    std::memset(&sa, 0, sizeof sa);
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(static_cast<uint16_t>(port));
    std::memcpy(&sa.sin6_addr, peers6_ + static_cast<size_t>(addr) * 16, 16);
    h.msg_name = &sa;
    h.msg_namelen = sizeof sa;
  } else {
    struct sockaddr_in& sa = sa_[k];
    SetSockaddr4(&sa, addr, static_cast<uint16_t>(port));
    h.msg_name = &sa;
    h.msg_namelen = sizeof sa;
  }
  h.msg_iov = &iov_[k];
  h.msg_iovlen = 1;
  h.msg_flags = 0;
  return h;
}

// After one sendmmsg over messages [i, i+built) of a batch (addr/port start at the
// batch's `from`): count what went out and decide, per errno, whether the send loop
// goes on (true; *i advanced past what was consumed) or stops (false: EAGAIN, ENOBUFS,
// a dead socket). Shared by Send and SendGso, whose messages differ only in their cmsgs.
bool Io::AfterSend(int r, uint32_t built, const uint32_t* addr, const uint16_t* port,
                   int64_t* i, int* refusedRetries) {
  if (r > 0) {
    for (int k = 0; k < r; k++) stats_[kTxBytes] += static_cast<double>(msgLen_[k]);
    stats_[kTxPackets] += r;
    if (static_cast<uint32_t>(r) < built) stats_[kTxPartial]++;
    *i += r;
    return true;
  }
  int err = r < 0 ? errno : EAGAIN;
  int64_t j = *i;  // the message that failed
  if (err == EINTR) return true;
  if (err == EAGAIN) {
    stats_[kEagain]++;
    return false;
  }
  if (err == ENOBUFS) {
    stats_[kEnobufs]++;
    return false;
  }
  if (err == ECONNREFUSED) {
    // A pending ICMP port-unreachable (IP_RECVERR) surfaced here instead of on a
    // read; reporting it cleared sk_err, so the message itself can be retried.
    stats_[kEconnrefused]++;
    DrainErrQueue(false);
    return ++*refusedRetries <= 8;
  }
  if (err == EMSGSIZE) {
    // Larger than the path/device MTU with DF semantics (IP_PMTUDISC_DO/PROBE or a
    // raw header-included packet). The kernel queued the MTU on the error queue
    // (IP_RECVERR); report it with this message's destination and drop the message.
    stats_[kEmsgsize]++;
    uint32_t mtu = DrainErrQueue(false);
    ReportPmtu(addr[j], port[j], mtu);
    if (closed_) return false;
    (*i)++;
    return true;
  }
  if (err == EBADF || err == ENOTSOCK) {
    stats_[kTxErrors]++;
    return false;
  }
  // Per-message errors (ENETUNREACH, EHOSTUNREACH, EPERM, EINVAL...): drop, count.
  stats_[kTxErrors]++;
  (*i)++;
  return true;
}

// The arguments send() and sendGso() share: off, len, addr, port arrays (info[0..3]),
// then from and count after `extra` more arguments. False with a pending TypeError when
// an argument is wrong or the range falls outside the arrays.
bool Io::ParseSendArgs(const Napi::CallbackInfo& info, size_t extra, const char* what,
                       SendArgs* a) {
  Napi::Env env = info.Env();
  size_t nOff, nLen, nAddr, nPort;
  a->off = TypedData<uint32_t>(env, info[0], napi_uint32_array, &nOff, "off");
  if (a->off == nullptr) return false;
  a->len = TypedData<uint32_t>(env, info[1], napi_uint32_array, &nLen, "len");
  if (a->len == nullptr) return false;
  a->addr = TypedData<uint32_t>(env, info[2], napi_uint32_array, &nAddr, "addr");
  if (a->addr == nullptr) return false;
  a->port = TypedData<uint16_t>(env, info[3], napi_uint16_array, &nPort, "port");
  if (a->port == nullptr) return false;
  if (!ArgInt(info, 4 + extra, &a->from, "from") || !ArgInt(info, 5 + extra, &a->count, "count"))
    return false;
  if (a->from < 0 || a->count < 0 ||
      static_cast<size_t>(a->from + a->count) > std::min({nOff, nLen, nAddr, nPort})) {
    ThrowType(env, std::string(what) + ": range outside the batch");
    return false;
  }
  return true;
}

// The loop of send() and sendGso(): chunks of up to kMaxBatch messages, message k of a
// chunk built from batch entry j by prepare(k, j), one sendmmsg per chunk. prepare
// returns false to end the chunk before j (a range outside the slab, a caller bug, or
// gather scratch used up); an entry that cannot start a chunk is dropped and counted.
// Returns how many entries were consumed. A template so prepare inlines into the loop.
template <typename Prepare>
int64_t Io::SendLoop(const SendArgs& a, Prepare prepare) {
  int64_t i = 0;
  int refusedRetries = 0;
  while (i < a.count) {
    uint32_t chunk = static_cast<uint32_t>(std::min<int64_t>(a.count - i, kMaxBatch));
    uint32_t built = 0;
    while (built < chunk && prepare(built, a.from + i + built)) built++;
    if (built == 0) {
      stats_[kTxErrors]++;
      i++;
      continue;
    }
    stats_[kTxCalls]++;
    int r = sendmmsg(fd_, msgs_.data(), built, MSG_DONTWAIT);
    if (!AfterSend(r, built, a.addr + a.from, a.port + a.from, &i, &refusedRetries)) break;
  }
  return i;
}

// send(off, len, addr, port, from, count) -> consumed. sendmmsg with one destination
// per message. Same return contract as write().
Napi::Value Io::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) return ThrowErrno(env, "send", EBADF);
  if (kind_ != kSocket) return ThrowType(env, "send needs a socket");
  SendArgs a;
  if (!ParseSendArgs(info, 0, "send", &a)) return env.Undefined();
  int64_t sent = SendLoop(a, [this, &a](uint32_t k, int64_t j) {
    if (!InSlab(a.off[j], a.len[j]) || !DestOk(a.addr[j])) return false;
    struct msghdr& h = PrepareMessage(k, slab_ + a.off[j], a.len[j], a.addr[j], a.port[j]);
    h.msg_control = nullptr;
    h.msg_controllen = 0;
    return true;
  });
  return Napi::Number::New(env, static_cast<double>(sent));
}

// setVnet(bytes): TUN reads carry a virtio_net_hdr of this size in front of the packet.
Napi::Value Io::SetVnet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t n;
  if (!ArgInt(info, 0, &n, "bytes")) return env.Undefined();
  if (n < 0 || n > 32) return ThrowType(env, "setVnet: 0..32 bytes");
  vnet_ = static_cast<uint32_t>(n);
  return env.Undefined();
}

// setGro(gso: Uint16Array | null): report each datagram's UDP_GRO segment size.
Napi::Value Io::SetGro(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || info[0].IsNull() || info[0].IsUndefined()) {
    bGso_ = nullptr;
    bGsoLen_ = 0;
    groRef_.Reset();
    return env.Undefined();
  }
  size_t n;
  uint16_t* p = TypedData<uint16_t>(env, info[0], napi_uint16_array, &n, "gso");
  if (p == nullptr) return env.Undefined();
  groRef_ = Napi::Persistent(info[0].As<Napi::Object>());
  bGso_ = p;
  bGsoLen_ = n;
  return env.Undefined();
}

// setGather(gStart: Uint32Array, gCount: Uint16Array, fOff: Uint32Array, fLen: Uint32Array)
// or setGather(null): batch entry i is the concatenation of slab ranges
// [fOff[k], fOff[k] + fLen[k]) for k in gStart[i] .. gStart[i] + gCount[i] when gCount[i]
// is not 0 (write() and sendGso() honour it; off/len are then ignored).
Napi::Value Io::SetGather(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  gStart_ = nullptr;
  gCount_ = nullptr;
  fOff_ = nullptr;
  fLen_ = nullptr;
  gEntries_ = fCap_ = 0;
  gatherRefs_.clear();
  if (info.Length() < 1 || info[0].IsNull() || info[0].IsUndefined()) return env.Undefined();
  size_t a, b, c, d;
  uint32_t* gs = TypedData<uint32_t>(env, info[0], napi_uint32_array, &a, "gStart");
  if (gs == nullptr) return env.Undefined();
  uint16_t* gc = TypedData<uint16_t>(env, info[1], napi_uint16_array, &b, "gCount");
  if (gc == nullptr) return env.Undefined();
  uint32_t* fo = TypedData<uint32_t>(env, info[2], napi_uint32_array, &c, "fOff");
  if (fo == nullptr) return env.Undefined();
  uint32_t* fl = TypedData<uint32_t>(env, info[3], napi_uint32_array, &d, "fLen");
  if (fl == nullptr) return env.Undefined();
  for (int k = 0; k < 4; k++) gatherRefs_.push_back(Napi::Persistent(info[k].As<Napi::Object>()));
  gStart_ = gs;
  gCount_ = gc;
  gEntries_ = std::min(a, b);
  fOff_ = fo;
  fLen_ = fl;
  fCap_ = std::min(c, d);
  if (giov_.empty()) giov_.resize(kGatherIov);
  return env.Undefined();
}

// setAddr6(peers: Uint8Array, rxAddr: Uint8Array): this socket is AF_INET6. addr[i]
// of a sent batch indexes `peers` (16 bytes per entry, entry 0 unused); a read stores
// datagram i's source address at rxAddr[i*16] (the batch's addr[i] stays 0).
Napi::Value Io::SetAddr6(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (kind_ != kSocket) return ThrowType(env, "setAddr6 needs a socket");
  size_t np, nr;
  uint8_t* p = TypedData<uint8_t>(env, info[0], napi_uint8_array, &np, "peers");
  if (p == nullptr) return env.Undefined();
  uint8_t* r = TypedData<uint8_t>(env, info[1], napi_uint8_array, &nr, "rxAddr");
  if (r == nullptr) return env.Undefined();
  addr6Refs_.clear();
  addr6Refs_.push_back(Napi::Persistent(info[0].As<Napi::Object>()));
  addr6Refs_.push_back(Napi::Persistent(info[1].As<Napi::Object>()));
  peers6_ = p;
  peers6Len_ = np;
  rxAddr6_ = r;
  rxAddr6Len_ = nr;
  family_ = AF_INET6;
  return env.Undefined();
}

int64_t Io::GatherInto(struct iovec* iov, size_t cap, int64_t j, size_t* used, bool* full) {
  uint32_t start = gStart_[j];
  uint32_t n = gCount_[j];
  *used = 0;
  *full = false;
  if (n > cap || n > IOV_MAX) {
    *full = n <= IOV_MAX;
    return -1;
  }
  if (static_cast<uint64_t>(start) + n > fCap_) return -1;
  int64_t total = 0;
  for (uint32_t k = 0; k < n; k++) {
    uint32_t o = fOff_[start + k], l = fLen_[start + k];
    if (!InSlab(o, l)) return -1;
    iov[k].iov_base = slab_ + o;
    iov[k].iov_len = l;
    total += l;
  }
  *used = n;
  return total;
}

namespace {
size_t PutCmsgInt(uint8_t* at, int level, int type, int value) {
  struct cmsghdr* c = reinterpret_cast<struct cmsghdr*>(at);
  c->cmsg_level = level;
  c->cmsg_type = type;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &value, sizeof value);
  return CMSG_SPACE(sizeof(int));
}
}  // namespace

// sendGso(off, len, addr, port, gso: Uint16Array, tosTtl: Uint16Array, from, count)
// -> consumed. Like send(), plus per message: UDP_SEGMENT = gso[j] when gso[j] > 0 and
// the message is longer (the kernel cuts it into gso[j]-byte datagrams, the last one
// shorter), and IP_TOS / IP_TTL from tosTtl[j] = tos << 8 | ttl when ttl > 0.
Napi::Value Io::SendGso(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) return ThrowErrno(env, "sendGso", EBADF);
  if (kind_ != kSocket) return ThrowType(env, "sendGso needs a socket");
  size_t nGso, nMeta;
  uint16_t* gso = TypedData<uint16_t>(env, info[4], napi_uint16_array, &nGso, "gso");
  if (gso == nullptr) return env.Undefined();
  uint16_t* meta = TypedData<uint16_t>(env, info[5], napi_uint16_array, &nMeta, "tosTtl");
  if (meta == nullptr) return env.Undefined();
  SendArgs a;
  if (!ParseSendArgs(info, 2, "sendGso", &a)) return env.Undefined();
  if (static_cast<size_t>(a.from + a.count) > std::min(nGso, nMeta))
    return ThrowType(env, "sendGso: range outside the batch");
  size_t gUsed = 0;  // gather scratch taken by the chunk being built
  int64_t sent = SendLoop(a, [&](uint32_t k, int64_t j) {
    if (k == 0) gUsed = 0;
    if (!DestOk(a.addr[j])) return false;
    uint32_t msgLen = a.len[j];
    if (gCount_ != nullptr && static_cast<size_t>(j) < gEntries_ && gCount_[j] > 0) {
      size_t at = gUsed;
      bool full = false;
      int64_t total = GatherInto(giov_.data() + at, giov_.size() - at, j, &gUsed, &full);
      if (total < 0) return false;  // scratch full (sent next turn) or a bad range
      gUsed += at;
      msgLen = static_cast<uint32_t>(total);
      struct msghdr& g = PrepareMessage(k, nullptr, 0, a.addr[j], a.port[j]);
      g.msg_iov = giov_.data() + at;
      g.msg_iovlen = gUsed - at;
      msgLen_[k] = msgLen;
    } else {
      if (!InSlab(a.off[j], a.len[j])) return false;
      PrepareMessage(k, slab_ + a.off[j], a.len[j], a.addr[j], a.port[j]);
    }
    struct msghdr& h = msgs_[k].msg_hdr;
    uint8_t* ctrl = &ctrl_[k * kCtrl];
    std::memset(ctrl, 0, kCtrl);
    size_t used = 0;
    if (gso[j] > 0 && msgLen > gso[j]) {
      struct cmsghdr* c = reinterpret_cast<struct cmsghdr*>(ctrl);
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      uint16_t g = gso[j];
      std::memcpy(CMSG_DATA(c), &g, sizeof g);
      used += CMSG_SPACE(sizeof(uint16_t));
    }
    if ((meta[j] & 0xff) != 0) {
      // IPv6: the traffic class and hop limit are the same fields under other names.
      if (family_ == AF_INET6) {
        used += PutCmsgInt(ctrl + used, SOL_IPV6, IPV6_TCLASS, meta[j] >> 8);
        used += PutCmsgInt(ctrl + used, SOL_IPV6, IPV6_HOPLIMIT, meta[j] & 0xff);
      } else {
        used += PutCmsgInt(ctrl + used, SOL_IP, IP_TOS, meta[j] >> 8);
        used += PutCmsgInt(ctrl + used, SOL_IP, IP_TTL, meta[j] & 0xff);
      }
    }
    h.msg_control = used > 0 ? ctrl : nullptr;
    h.msg_controllen = used;
    return true;
  });
  return Napi::Number::New(env, static_cast<double>(sent));
}

}  // namespace vxtun
