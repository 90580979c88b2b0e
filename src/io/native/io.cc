// The receiving half of Io (poll watcher, batched reads, error queue, PMTU reports) and
// the object's life (start/stop/close). The sending half is in io_send.cc.
#include "io.h"

#include <linux/errqueue.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/ip.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cerrno>
#include <cstring>

#include "util.h"

namespace vxtun {

namespace {
const char* const kStatNames[Io::kStatCount] = {
    "RX_PACKETS",   "RX_BYTES",     "RX_BATCHES", "RX_TRUNCATED",   "RX_ERRORS", "TX_PACKETS",
    "TX_BYTES",     "TX_CALLS",     "TX_PARTIAL", "EAGAIN",         "ENOBUFS",   "ECONNREFUSED",
    "EMSGSIZE",     "TX_ERRORS",    "POOL_EXHAUSTED", "ERRQUEUE",   "POLL_ERRORS"};

// A poll error that persists this many times in a row without progress is treated as
// fatal, so a broken fd can never spin the event loop.
constexpr uint32_t kMaxConsecutivePollErrors = 1000;
}  // namespace

const char* Io::StatName(int i) { return kStatNames[i]; }

Napi::Function Io::Init(Napi::Env env) {
  return DefineClass(env, "Io",
                     {
                         InstanceMethod<&Io::Start>("start"),
                         InstanceMethod<&Io::Stop>("stop"),
                         InstanceMethod<&Io::Pause>("pause"),
                         InstanceMethod<&Io::Resume>("resume"),
                         InstanceMethod<&Io::Wake>("wake"),
                         InstanceMethod<&Io::Write>("write"),
                         InstanceMethod<&Io::Send>("send"),
                         InstanceMethod<&Io::Close>("close"),
                         InstanceMethod<&Io::Unref>("unref"),
                         InstanceMethod<&Io::SetVnet>("setVnet"),
                         InstanceMethod<&Io::SetGro>("setGro"),
                         InstanceMethod<&Io::SendGso>("sendGso"),
                         InstanceMethod<&Io::SetGather>("setGather"),
                         InstanceMethod<&Io::SetAddr6>("setAddr6"),
                     });
}

// new Io(fd, kind, slab: ArrayBuffer, stats: Float64Array, onError(errno, msg),
//        onPmtu?(addr, port, mtu))
Io::Io(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Io>(info), fd_(-1), kind_(kTun) {
  Napi::Env env = info.Env();
  int64_t fd, kind;
  if (!ArgInts(info, {{&fd, "fd"}, {&kind, "kind"}})) return;
  if (kind != kTun && kind != kSocket) {
    ThrowType(env, "Io: unknown kind");
    return;
  }
  if (info.Length() < 5 || !info[2].IsArrayBuffer() || !info[4].IsFunction()) {
    ThrowType(env, "Io(fd, kind, slab: ArrayBuffer, stats: Float64Array, onError, onPmtu?)");
    return;
  }
  auto ab = info[2].As<Napi::ArrayBuffer>();
  slab_ = static_cast<uint8_t*>(ab.Data());
  slabLen_ = ab.ByteLength();
  size_t n;
  stats_ = TypedData<double>(env, info[3], napi_float64_array, &n, "stats");
  if (stats_ == nullptr) return;
  if (n < kStatCount) {
    ThrowType(env, "stats array too short");
    stats_ = nullptr;
    return;
  }
  keep_.push_back(Napi::Persistent(ab.As<Napi::Object>()));
  keep_.push_back(Napi::Persistent(info[3].As<Napi::Object>()));
  onError_ = Napi::Persistent(info[4].As<Napi::Function>());
  if (info.Length() > 5 && info[5].IsFunction()) onPmtu_ = Napi::Persistent(info[5].As<Napi::Function>());
  async_ = std::make_unique<Napi::AsyncContext>(env, "vxtun:io");
  fd_ = static_cast<int>(fd);
  kind_ = static_cast<int>(kind);
  msgs_.resize(kMaxBatch);
  iov_.resize(kMaxBatch);
  msgLen_.resize(kMaxBatch);
  sa_.resize(kMaxBatch);
  sa6_.resize(kMaxBatch);
  slots_.resize(kMaxBatch);
  ctrl_.resize(kMaxBatch * kCtrl);
}

Io::~Io() {
  if (poll_ != nullptr) {
    uv_poll_stop(poll_);
    poll_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(poll_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
  }
  if (!closed_ && fd_ >= 0) close(fd_);
}

// start(stack, meta, slotSize, headroom, bSlot, bOff, bLen, bAddr|null, bPort|null,
//       maxBatch, onBatch(count))
Napi::Value Io::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) return ThrowErrno(env, "start", EBADF);
  if (reading_) return ThrowType(env, "already reading");
  if (stats_ == nullptr) return ThrowType(env, "Io not initialised");
  size_t stackLen, metaLen, nSlot, nOff, nLen, nAddr = 0, nPort = 0;
  int64_t slotSize, headroom, maxBatch;
  uint32_t* stack = TypedData<uint32_t>(env, info[0], napi_uint32_array, &stackLen, "stack");
  if (stack == nullptr) return env.Undefined();
  uint32_t* meta = TypedData<uint32_t>(env, info[1], napi_uint32_array, &metaLen, "meta");
  if (meta == nullptr) return env.Undefined();
  if (!ArgInt(info, 2, &slotSize, "slotSize") || !ArgInt(info, 3, &headroom, "headroom"))
    return env.Undefined();
  uint32_t* bSlot = TypedData<uint32_t>(env, info[4], napi_uint32_array, &nSlot, "batch.slot");
  if (bSlot == nullptr) return env.Undefined();
  uint32_t* bOff = TypedData<uint32_t>(env, info[5], napi_uint32_array, &nOff, "batch.off");
  if (bOff == nullptr) return env.Undefined();
  uint32_t* bLen = TypedData<uint32_t>(env, info[6], napi_uint32_array, &nLen, "batch.len");
  if (bLen == nullptr) return env.Undefined();
  uint32_t* bAddr = nullptr;
  uint16_t* bPort = nullptr;
  if (kind_ == kSocket) {
    bAddr = TypedData<uint32_t>(env, info[7], napi_uint32_array, &nAddr, "batch.addr");
    if (bAddr == nullptr) return env.Undefined();
    bPort = TypedData<uint16_t>(env, info[8], napi_uint16_array, &nPort, "batch.port");
    if (bPort == nullptr) return env.Undefined();
  }
  if (!ArgInt(info, 9, &maxBatch, "maxBatch")) return env.Undefined();
  if (info.Length() < 11 || !info[10].IsFunction()) return ThrowType(env, "onBatch must be a function");
  size_t cap = std::min({nSlot, nOff, nLen});
  if (kind_ == kSocket) cap = std::min({cap, nAddr, nPort});
  if (maxBatch < 1 || maxBatch > kMaxBatch || static_cast<size_t>(maxBatch) > cap)
    return ThrowType(env, "maxBatch must be 1.." + std::to_string(kMaxBatch) +
                              " and fit the batch arrays");
  if (metaLen < 3 || slotSize < 1 || headroom < 0 || headroom >= slotSize ||
      static_cast<uint64_t>(slotSize) * stackLen > slabLen_)
    return ThrowType(env, "slab geometry does not fit the slab buffer");

  stack_ = stack;
  stackLen_ = stackLen;
  meta_ = meta;
  slotSize_ = static_cast<uint32_t>(slotSize);
  headroom_ = static_cast<uint32_t>(headroom);
  maxBatch_ = static_cast<uint32_t>(maxBatch);
  bSlot_ = bSlot;
  bOff_ = bOff;
  bLen_ = bLen;
  bAddr_ = bAddr;
  bPort_ = bPort;
  for (size_t i = 0; i < 9; i++) {
    if (info[i].IsObject()) keep_.push_back(Napi::Persistent(info[i].As<Napi::Object>()));
  }
  onBatch_ = Napi::Persistent(info[10].As<Napi::Function>());

  if (poll_ == nullptr) {
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr)
      return ThrowType(env, "no libuv loop");
    poll_ = new uv_poll_t;
    int r = uv_poll_init(loop, poll_, fd_);
    if (r < 0) {
      delete poll_;
      poll_ = nullptr;
      return ThrowErrno(env, "uv_poll_init", -r);
    }
    poll_->data = this;
    if (unrefLoop_) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
  }
  reading_ = true;
  // While the kernel may call us back, the wrapper must not be collected.
  if (!refd_) {
    Ref();
    refd_ = true;
  }
  StartPoll();
  return env.Undefined();
}

void Io::StartPoll() {
  if (poll_ == nullptr || polling_ || !ShouldPoll()) return;
  int r = uv_poll_start(poll_, UV_READABLE, PollCb);
  if (r < 0) {
    Fatal(-r, "uv_poll_start");
    return;
  }
  polling_ = true;
}

void Io::StopPoll() {
  if (poll_ != nullptr && polling_) uv_poll_stop(poll_);
  polling_ = false;
}

// stop(): end reading (start() may be called again with another batch/handler).
Napi::Value Io::Stop(const Napi::CallbackInfo& info) {
  StopPoll();
  reading_ = false;
  starved_ = false;
  paused_ = false;
  if (refd_) {
    refd_ = false;
    Napi::ObjectWrap<Io>::Unref();
  }
  // Drop the arrays and handler of this reading session; [0..1] are slab and stats.
  if (keep_.size() > 2) keep_.resize(2);
  onBatch_.Reset();
  return info.Env().Undefined();
}

Napi::Value Io::Pause(const Napi::CallbackInfo& info) {
  paused_ = true;
  StopPoll();
  return info.Env().Undefined();
}

Napi::Value Io::Resume(const Napi::CallbackInfo& info) {
  paused_ = false;
  StartPoll();
  return info.Env().Undefined();
}

// Called by Slab.free() (via TypeScript) after slots came back while we were starved.
Napi::Value Io::Wake(const Napi::CallbackInfo& info) {
  if (starved_ && meta_ != nullptr && meta_[0] > 0) {
    starved_ = false;
    StartPoll();
  }
  return info.Env().Undefined();
}

// Lets the process exit while this fd is still being read (for tools, not the dataplane).
Napi::Value Io::Unref(const Napi::CallbackInfo& info) {
  unrefLoop_ = true;
  if (poll_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
  return info.Env().Undefined();
}

void Io::PollCb(uv_poll_t* handle, int status, int events) {
  Io* self = static_cast<Io*>(handle->data);
  if (self == nullptr || self->closed_) return;
  if (status < 0) {
    self->OnPollError(status);
  } else if (events & UV_READABLE) {
    self->OnReadable();
  }
}

void Io::OnReadable() {
  uint32_t top = meta_[0];
  if (top == 0) {
    // Backpressure: stop reading (the kernel queues, then drops) until Slab.free()
    // wakes us. Never allocate, never spin.
    StopPoll();
    starved_ = true;
    meta_[1]++;
    meta_[2] = 1;
    stats_[kPoolExhausted]++;
    return;
  }
  uint32_t want = std::min(top, maxBatch_);
  if (kind_ == kTun) {
    ReadTun(want);
  } else {
    ReadSocket(want);
  }
}

void Io::ReadTun(uint32_t want) {
  uint32_t top = meta_[0];
  uint32_t n = 0;
  const uint32_t capBytes = slotSize_ - headroom_ + vnet_;
  int fatalErr = 0;
  // Bounded even when every read is dropped (oversized or uncopyable packets): at most
  // 2 x want reads per readiness event, so one event never monopolises the loop.
  for (uint32_t attempts = 0; n < want && attempts < 2 * want; attempts++) {
    uint32_t slot = stack_[top - 1];
    uint32_t off = slot * slotSize_ + headroom_;
    ssize_t r = read(fd_, slab_ + off - vnet_, capBytes);
    if (r < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN) break;
      if (TunFatal(err)) {
        fatalErr = err;
        break;
      }
      // EFAULT/EINVAL: the kernel dropped one packet it could not copy; keep going.
      stats_[kRxErrors]++;
      continue;
    }
    if (static_cast<size_t>(r) > capBytes || static_cast<size_t>(r) < vnet_) {
      // The packet did not fit the slot; the kernel consumed it, the slot stays free.
      stats_[kRxTruncated]++;
      continue;
    }
    top--;
    bSlot_[n] = slot;
    bOff_[n] = off;
    bLen_[n] = static_cast<uint32_t>(r) - vnet_;
    stats_[kRxBytes] += static_cast<double>(r);
    n++;
  }
  meta_[0] = top;
  if (n > 0) consecutivePollErrors_ = 0;
  if (n > 0) Deliver(n);
  if (fatalErr != 0 && !closed_) Fatal(fatalErr, "read");
}

void Io::ReadSocket(uint32_t want) {
  uint32_t top = meta_[0];
  const uint32_t capBytes = slotSize_ - headroom_;
  for (uint32_t i = 0; i < want; i++) {
    uint32_t slot = stack_[top - 1 - i];
    slots_[i] = slot;
    iov_[i].iov_base = slab_ + static_cast<size_t>(slot) * slotSize_ + headroom_;
    iov_[i].iov_len = capBytes;
    struct msghdr& h = msgs_[i].msg_hdr;
    if (family_ == AF_INET6) {
      h.msg_name = &sa6_[i];
      h.msg_namelen = sizeof(struct sockaddr_in6);
    } else {
      h.msg_name = &sa_[i];
      h.msg_namelen = sizeof(struct sockaddr_in);
    }
    h.msg_iov = &iov_[i];
    h.msg_iovlen = 1;
    h.msg_control = bGso_ != nullptr ? &ctrl_[i * kCtrl] : nullptr;
    h.msg_controllen = bGso_ != nullptr ? kCtrl : 0;
    h.msg_flags = 0;
    msgs_[i].msg_len = 0;
  }
  int r;
  do {
    r = recvmmsg(fd_, msgs_.data(), want, MSG_DONTWAIT, nullptr);
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    int err = errno;
    if (err == EAGAIN) return;
    if (err == EBADF || err == ENOTSOCK) {
      Fatal(err, "recvmmsg");
      return;
    }
    // An ICMP error reported through sk_err (IP_RECVERR): counted, then carry on.
    if (err == ECONNREFUSED) {
      stats_[kEconnrefused]++;
    } else {
      stats_[kRxErrors]++;
    }
    DrainErrQueue(true);
    return;
  }
  // Slots [top - r, top) were consumed in stack order; put back the ones we drop.
  uint32_t got = static_cast<uint32_t>(r);
  uint32_t newTop = top - got;
  uint32_t n = 0;
  for (uint32_t i = 0; i < got; i++) {
    uint32_t slot = slots_[i];
    if (msgs_[i].msg_hdr.msg_flags & MSG_TRUNC) {
      stats_[kRxTruncated]++;
      stack_[newTop++] = slot;
      continue;
    }
    uint32_t len = msgs_[i].msg_len;
    bSlot_[n] = slot;
    bOff_[n] = slot * slotSize_ + headroom_;
    bLen_[n] = len;
    if (family_ == AF_INET6) {
      // The source goes to TypeScript as bytes; it owns the address table (addr = 0).
      if (static_cast<size_t>(n + 1) * 16 <= rxAddr6Len_)
        std::memcpy(rxAddr6_ + n * 16, &sa6_[i].sin6_addr, 16);
      bAddr_[n] = 0;
      bPort_[n] = ntohs(sa6_[i].sin6_port);
    } else {
      bAddr_[n] = ntohl(sa_[i].sin_addr.s_addr);
      bPort_[n] = ntohs(sa_[i].sin_port);
    }
    if (bGso_ != nullptr && n < bGsoLen_) {
      uint16_t gso = 0;
      struct msghdr& h = msgs_[i].msg_hdr;
      for (struct cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
          int v = 0;
          std::memcpy(&v, CMSG_DATA(c), sizeof v);
          gso = static_cast<uint16_t>(v);
        }
      }
      bGso_[n] = gso;
    }
    stats_[kRxBytes] += len;
    n++;
  }
  meta_[0] = newTop;
  if (n > 0) consecutivePollErrors_ = 0;
  if (n > 0) Deliver(n);
}

void Io::Deliver(uint32_t n) {
  stats_[kRxPackets] += n;
  stats_[kRxBatches]++;
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  CallJs(onBatch_, {Napi::Number::New(env, n)});
}

void Io::CallJs(Napi::FunctionReference& fn, std::initializer_list<napi_value> args) {
  if (fn.IsEmpty()) return;
  Napi::Env env = Env();
  fn.MakeCallback(Value(), args, *async_);
  // A throwing handler must not be swallowed: route it to 'uncaughtException'.
  if (env.IsExceptionPending()) {
    Napi::Error e = env.GetAndClearPendingException();
    napi_fatal_exception(env, e.Value());
  }
}

void Io::OnPollError(int status) {
  // libuv stops the watcher itself when it sees POLLERR.
  polling_ = false;
  stats_[kPollErrors]++;
  if (++consecutivePollErrors_ > kMaxConsecutivePollErrors) {
    Fatal(-status, "poll error repeating without progress");
    return;
  }
  if (kind_ == kTun) {
    // A TUN fd signals POLLERR once its device is gone; TUNGETIFF then fails with
    // EBADFD. Asking costs no packet, unlike a probing read().
    struct ifreq ifr;
    std::memset(&ifr, 0, sizeof ifr);
    if (ioctl(fd_, TUNGETIFF, &ifr) < 0) {
      Fatal(errno, "device detached (TUNGETIFF)");
      return;
    }
  } else {
    // Sockets signal POLLERR for a queued ICMP/local error (IP_RECVERR) or sk_err.
    DrainErrQueue(true);
    int soErr = 0;
    socklen_t len = sizeof soErr;
    if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &soErr, &len) < 0) {
      Fatal(errno, "getsockopt(SO_ERROR)");
      return;
    }
    if (soErr == ECONNREFUSED) {
      stats_[kEconnrefused]++;
    } else if (soErr != 0) {
      stats_[kRxErrors]++;
    }
  }
  if (!closed_) StartPoll();
}

uint32_t Io::DrainErrQueue(bool fromPoll) {
  uint32_t lastMtu = 0;
  // Bounded: the queue is itself bounded by SO_RCVBUF, this just caps one drain.
  for (int i = 0; i < 256 && !closed_; i++) {
    char data[64];
    char ctrl[512];
    struct sockaddr_in6 sa;  // room for either family
    std::memset(&sa, 0, sizeof sa);
    struct iovec iov = {data, sizeof data};
    struct msghdr m;
    std::memset(&m, 0, sizeof m);
    m.msg_name = &sa;
    m.msg_namelen = sizeof sa;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctrl;
    m.msg_controllen = sizeof ctrl;
    ssize_t r = recvmsg(fd_, &m, MSG_ERRQUEUE | MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    stats_[kErrQueue]++;
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
      bool v4 = c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR;
      bool v6 = c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR;
      if (!v4 && !v6) continue;
      struct sock_extended_err ee;
      std::memcpy(&ee, CMSG_DATA(c), sizeof ee);
      if (ee.ee_errno == EMSGSIZE) {
        lastMtu = ee.ee_info;
        // msg_name is the original destination (and, for ICMP, its port); an IPv6 one
        // is reported as its index in the address table (rare: a linear search).
        if (fromPoll) {
          if (family_ == AF_INET6) {
            ReportPmtu(PeerIndex6(reinterpret_cast<const uint8_t*>(&sa.sin6_addr)),
                       ntohs(sa.sin6_port), ee.ee_info);
          } else {
            const auto* s4 = reinterpret_cast<const struct sockaddr_in*>(&sa);
            ReportPmtu(ntohl(s4->sin_addr.s_addr), ntohs(s4->sin_port), ee.ee_info);
          }
        }
      } else if (ee.ee_errno == ECONNREFUSED && fromPoll) {
        // Dequeuing the entry clears sk_err, so no send will report this refusal.
        stats_[kEconnrefused]++;
      }
    }
  }
  return lastMtu;
}

uint32_t Io::PeerIndex6(const uint8_t* a) const {
  for (size_t k = 1; (k + 1) * 16 <= peers6Len_; k++) {
    if (std::memcmp(peers6_ + k * 16, a, 16) == 0) return static_cast<uint32_t>(k);
  }
  return 0;
}

void Io::ReportPmtu(uint32_t addr, uint32_t port, uint32_t mtu) {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  CallJs(onPmtu_, {Napi::Number::New(env, addr), Napi::Number::New(env, port),
                   Napi::Number::New(env, mtu)});
}

void Io::Fatal(int err, const std::string& what) {
  if (closed_) return;
  StopPoll();
  bool wasReading = reading_;
  reading_ = false;
  if (refd_) {
    refd_ = false;
    Napi::ObjectWrap<Io>::Unref();
  }
  (void)wasReading;
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  Napi::Error e = MakeErrnoError(env, what, err);
  CallJs(onError_, {Napi::Number::New(env, err), e.Value()});
}


// close(closeFd: boolean). Idempotent. Stops the watcher before the fd is closed, as
// libuv requires.
Napi::Value Io::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) return env.Undefined();
  bool closeFd = info.Length() < 1 || info[0].ToBoolean().Value();
  StopPoll();
  reading_ = false;
  closed_ = true;
  if (poll_ != nullptr) {
    poll_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(poll_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
  }
  if (closeFd && fd_ >= 0) close(fd_);
  fd_ = -1;
  if (refd_) {
    refd_ = false;
    Napi::ObjectWrap<Io>::Unref();
  }
  return env.Undefined();
}

}  // namespace vxtun
