// Io: one file descriptor (TUN/TAP queue or datagram socket) bound to the shared slab.
//
// Receive: a uv_poll_t watches the fd; on readiness we pop free slots from the slab's
// free stack (a Uint32Array shared with TypeScript), read up to maxBatch packets into
// them at `headroom`, fill the Batch typed arrays and call JS once with the count.
// Send: TypeScript hands us (off, len[, addr, port]) arrays and a range; we write each
// [off, off+len) of the slab with write() (TUN) or sendmmsg() (sockets).
// No per-packet allocation happens on either side, and no byte is interpreted here.
#pragma once

#include <napi.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <uv.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace vxtun {

class Io : public Napi::ObjectWrap<Io> {
 public:
  enum Kind { kTun = 0, kSocket = 1 };
  static constexpr int kMaxBatch = 1024;

  // Counters live in a Float64Array owned by TypeScript (read there without a call).
  enum Stat {
    kRxPackets,
    kRxBytes,
    kRxBatches,
    kRxTruncated,
    kRxErrors,
    kTxPackets,
    kTxBytes,
    kTxCalls,
    kTxPartial,
    kEagain,
    kEnobufs,
    kEconnrefused,
    kEmsgsize,
    kTxErrors,
    kPoolExhausted,
    kErrQueue,
    kPollErrors,
    kStatCount
  };
  static const char* StatName(int i);

  static Napi::Function Init(Napi::Env env);
  explicit Io(const Napi::CallbackInfo& info);
  ~Io() override;

 private:
  // JS methods.
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Stop(const Napi::CallbackInfo& info);
  Napi::Value Pause(const Napi::CallbackInfo& info);
  Napi::Value Resume(const Napi::CallbackInfo& info);
  Napi::Value Wake(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  // Fast path (src/io/gso-batch.ts): vnet header bytes in front of TUN reads, UDP_GRO
  // segment sizes on socket reads, and sendmmsg with UDP_SEGMENT/IP_TOS/IP_TTL cmsgs.
  Napi::Value SetVnet(const Napi::CallbackInfo& info);
  Napi::Value SetGro(const Napi::CallbackInfo& info);
  Napi::Value SendGso(const Napi::CallbackInfo& info);
  // Gather (src/io/batch.ts `Gather`): message i of a batch may be a list of slab
  // ranges instead of one (a segment's headers here, its payload still inside the
  // super-packet it came from), so neither direction has to move payload bytes to glue
  // a message together. Registered once per endpoint.
  Napi::Value SetGather(const Napi::CallbackInfo& info);
  // IPv6 underlay (src/underlay/peers6.ts): the socket is AF_INET6; a batch's addr[i] is
  // then an index into a table of 16-byte addresses that TypeScript keeps (index 0 is
  // "none"), and reads store each datagram's source address in rxAddr[i*16..] for
  // TypeScript to turn into an index (addr[i] is left 0).
  Napi::Value SetAddr6(const Napi::CallbackInfo& info);

  static void PollCb(uv_poll_t* handle, int status, int events);
  void OnReadable();
  void OnPollError(int status);
  void ReadTun(uint32_t want);
  void ReadSocket(uint32_t want);
  void Deliver(uint32_t n);
  void Fatal(int err, const std::string& what);
  // Drains the socket error queue (IP_RECVERR). Returns the last EMSGSIZE mtu seen.
  struct msghdr& PrepareMessage(uint32_t k, uint8_t* data, uint32_t len, uint32_t addr,
                                uint32_t port);
  // False when `addr` cannot name a destination (IPv6: no such table entry, or an
  // unused one, which is all zeros: never sent to "::").
  bool DestOk(uint32_t addr) const {
    if (family_ != AF_INET6) return true;
    if (addr == 0 || (static_cast<size_t>(addr) + 1) * 16 > peers6Len_) return false;
    uint64_t w[2];
    std::memcpy(w, peers6_ + static_cast<size_t>(addr) * 16, 16);
    return (w[0] | w[1]) != 0;
  }
  // IPv6: the table index of address `a` (16 bytes), 0 when it is not in the table.
  uint32_t PeerIndex6(const uint8_t* a) const;
  // Points message k at the gathered ranges of batch entry j, using scratch iovecs from
  // *used on. Returns the message's length, or -1 when j has no gather list, a range is
  // outside the slab, or the scratch is full (*full set).
  int64_t GatherInto(struct iovec* iov, size_t cap, int64_t j, size_t* used, bool* full);
  struct SendArgs {
    uint32_t* off;
    uint32_t* len;
    uint32_t* addr;
    uint16_t* port;
    int64_t from;
    int64_t count;
  };
  bool ParseSendArgs(const Napi::CallbackInfo& info, size_t extra, const char* what,
                     SendArgs* a);
  bool AfterSend(int r, uint32_t built, const uint32_t* addr, const uint16_t* port, int64_t* i,
                 int* refusedRetries);
  template <typename Prepare>
  int64_t SendLoop(const SendArgs& a, Prepare prepare);
  uint32_t DrainErrQueue(bool fromPoll);
  void ReportPmtu(uint32_t addr, uint32_t port, uint32_t mtu);
  void CallJs(Napi::FunctionReference& fn, std::initializer_list<napi_value> args);
  bool ShouldPoll() const { return reading_ && !paused_ && !starved_ && !closed_; }
  void StartPoll();
  void StopPoll();
  bool InSlab(uint32_t off, uint32_t len) const {
    return static_cast<uint64_t>(off) + len <= slabLen_;
  }

  int fd_;
  int kind_;
  int family_ = AF_INET;
  uint8_t* peers6_ = nullptr;
  size_t peers6Len_ = 0;
  uint8_t* rxAddr6_ = nullptr;
  size_t rxAddr6Len_ = 0;
  std::vector<Napi::ObjectReference> addr6Refs_;
  bool closed_ = false;
  bool reading_ = false;
  bool paused_ = false;
  bool starved_ = false;
  bool polling_ = false;
  bool refd_ = false;
  bool unrefLoop_ = false;
  uint32_t consecutivePollErrors_ = 0;

  uint8_t* slab_ = nullptr;
  size_t slabLen_ = 0;
  double* stats_ = nullptr;
  // Free-slot stack and slab meta ([0] = free count, [1] = exhaustion events,
  // [2] = "a reader is starved" flag that makes Slab.free() wake readers).
  uint32_t* stack_ = nullptr;
  size_t stackLen_ = 0;
  uint32_t* meta_ = nullptr;
  uint32_t slotSize_ = 0;
  uint32_t headroom_ = 0;
  uint32_t maxBatch_ = 0;
  uint32_t* bSlot_ = nullptr;
  uint32_t* bOff_ = nullptr;
  uint32_t* bLen_ = nullptr;
  uint32_t* bAddr_ = nullptr;
  uint16_t* bPort_ = nullptr;
  // TUN: bytes of virtio_net_hdr read in front of each packet (the packet itself still
  // starts at slot + headroom; the header sits just before it). 0 = none.
  uint32_t vnet_ = 0;
  // Socket reads: when set, recvmmsg asks for cmsgs and stores each datagram's UDP_GRO
  // segment size (0 = not coalesced) here, parallel to the batch arrays.
  uint16_t* bGso_ = nullptr;
  size_t bGsoLen_ = 0;
  Napi::ObjectReference groRef_;
  // Gather lists (SetGather): entry i has gCount_[i] ranges fOff_/fLen_[gStart_[i]..].
  uint32_t* gStart_ = nullptr;
  uint16_t* gCount_ = nullptr;
  size_t gEntries_ = 0;
  uint32_t* fOff_ = nullptr;
  uint32_t* fLen_ = nullptr;
  size_t fCap_ = 0;
  std::vector<Napi::ObjectReference> gatherRefs_;
  // Scratch iovecs for gathered messages and each message's length (for counters).
  static constexpr size_t kGatherIov = 8192;
  std::vector<struct iovec> giov_;
  std::vector<uint32_t> msgLen_;

  // Keep every array whose pointer we cache alive for as long as we are.
  std::vector<Napi::ObjectReference> keep_;
  Napi::FunctionReference onBatch_;
  Napi::FunctionReference onError_;
  Napi::FunctionReference onPmtu_;
  std::unique_ptr<Napi::AsyncContext> async_;
  uv_poll_t* poll_ = nullptr;

  // Scratch for recvmmsg/sendmmsg, allocated once.
  std::vector<struct mmsghdr> msgs_;
  std::vector<struct iovec> iov_;
  std::vector<struct sockaddr_in> sa_;
  std::vector<struct sockaddr_in6> sa6_;
  std::vector<uint32_t> slots_;
  // Per-message control buffers (UDP_GRO on receive; UDP_SEGMENT, IP_TOS, IP_TTL on send).
  static constexpr size_t kCtrl = 64;
  std::vector<uint8_t> ctrl_;
};

}  // namespace vxtun
