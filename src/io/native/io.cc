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

// Errors after which a TUN fd can never deliver again (device deleted or detached).
bool TunFatal(int err) {
  return err == EBADFD || err == EBADF || err == EIO || err == ENODEV || err == ENXIO ||
         err == EPIPE;
}

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
    h.msg_name = &sa_[i];
    h.msg_namelen = sizeof(struct sockaddr_in);
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
    bAddr_[n] = ntohl(sa_[i].sin_addr.s_addr);
    bPort_[n] = ntohs(sa_[i].sin_port);
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
    struct sockaddr_in sa;
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
      if (c->cmsg_level != SOL_IP || c->cmsg_type != IP_RECVERR) continue;
      struct sock_extended_err ee;
      std::memcpy(&ee, CMSG_DATA(c), sizeof ee);
      if (ee.ee_errno == EMSGSIZE) {
        lastMtu = ee.ee_info;
        // msg_name is the original destination (and, for ICMP, its port).
        if (fromPoll) ReportPmtu(ntohl(sa.sin_addr.s_addr), ntohs(sa.sin_port), ee.ee_info);
      } else if (ee.ee_errno == ECONNREFUSED && fromPoll) {
        // Dequeuing the entry clears sk_err, so no send will report this refusal.
        stats_[kEconnrefused]++;
      }
    }
  }
  return lastMtu;
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
  struct sockaddr_in& sa = sa_[k];
  SetSockaddr4(&sa, addr, static_cast<uint16_t>(port));
  struct msghdr& h = msgs_[k].msg_hdr;
  h.msg_name = &sa;
  h.msg_namelen = sizeof sa;
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
    if (!InSlab(a.off[j], a.len[j])) return false;
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
      used += PutCmsgInt(ctrl + used, SOL_IP, IP_TOS, meta[j] >> 8);
      used += PutCmsgInt(ctrl + used, SOL_IP, IP_TTL, meta[j] & 0xff);
    }
    h.msg_control = used > 0 ? ctrl : nullptr;
    h.msg_controllen = used;
    return true;
  });
  return Napi::Number::New(env, static_cast<double>(sent));
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
