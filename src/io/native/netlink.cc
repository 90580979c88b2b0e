// rtnetlink transport: open a NETLINK_ROUTE socket in a given network namespace, send
// one request TypeScript built (src/system/netlink.ts), hand back the kernel's reply
// bytes. Nothing here knows what a link or a route is: the only thing read from a
// reply is the nlmsghdr framing, to know when the answer to this request is complete.
// Also flock(2), which the in-agent IPAM needs to share host-local's lock file.

#include "netlink.h"

#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "util.h"

#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif
#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif

namespace vxtun {
namespace {

int OpenRouteSocket() {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return -errno;
  int one = 1;
  // Error replies without a copy of the request, but with the kernel's own one-line
  // reason (extack) when it has one.
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  // rtnetlink answers within sendmsg(); the timeout only guards against a reply that
  // never comes (a bug), so a caller never hangs the event loop for good.
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_nl sa;
  std::memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  return fd;
}

// nlOpen(netnsPath: string) -> fd. "" = the calling thread's namespace. A socket
// belongs to the namespace it was created in for its whole life, so the thread enters
// the target just for socket() and returns at once (nothing runs in between).
Napi::Value NlOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) return ThrowType(env, "nlOpen(netnsPath)");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  if (path.empty()) {
    int fd = OpenRouteSocket();
    if (fd < 0) return ThrowErrno(env, "netlink socket", -fd);
    return Napi::Number::New(env, fd);
  }
  int target = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) return ThrowErrno(env, "open " + path, errno);
  int orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (orig < 0) {
    int err = errno;
    close(target);
    return ThrowErrno(env, "open /proc/thread-self/ns/net", err);
  }
  if (setns(target, CLONE_NEWNET) < 0) {
    int err = errno;
    close(target);
    close(orig);
    // EINVAL: the path is not a network namespace (e.g. a plain file).
    return ThrowErrno(env, "setns " + path, err);
  }
  int fd = OpenRouteSocket();
  if (setns(orig, CLONE_NEWNET) < 0) {
    // The main thread would go on configuring the wrong namespace: never continue.
    std::abort();
  }
  close(target);
  close(orig);
  if (fd < 0) return ThrowErrno(env, "netlink socket in " + path, -fd);
  return Napi::Number::New(env, fd);
}

// nlTransact(fd, request: Uint8Array) -> Buffer of every reply message to the
// request's sequence number, up to and including the NLMSG_ERROR (ack or errno) or
// NLMSG_DONE that ends it. Throws only when the socket itself fails.
Napi::Value NlTransact(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd;
  if (!ArgInt(info, 0, &fd, "fd")) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsTypedArray()) return ThrowType(env, "nlTransact(fd, req)");
  Napi::Uint8Array req = info[1].As<Napi::Uint8Array>();
  if (req.ByteLength() < sizeof(struct nlmsghdr)) return ThrowType(env, "request too short");
  struct nlmsghdr head;
  std::memcpy(&head, req.Data(), sizeof head);
  struct sockaddr_nl kernel;
  std::memset(&kernel, 0, sizeof kernel);
  kernel.nl_family = AF_NETLINK;
  ssize_t n;
  do {
    n = sendto(static_cast<int>(fd), req.Data(), req.ByteLength(), 0,
               reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ThrowErrno(env, "netlink send", errno);

  std::vector<uint8_t> out;
  // A dump chunk is at most ~32 KiB (NLMSG_GOODSIZE and friends); twice that, and
  // MSG_TRUNC tells us if a datagram was larger anyway. Per call, not static: worker
  // threads load the addon too.
  std::vector<uint8_t> space(64 * 1024);
  uint8_t* buf = space.data();
  for (;;) {
    do {
      n = recv(static_cast<int>(fd), buf, space.size(), MSG_TRUNC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return ThrowErrno(env, "netlink recv", errno);
    if (static_cast<size_t>(n) > space.size()) return ThrowErrno(env, "netlink recv", EMSGSIZE);
    bool done = false;
    size_t len = static_cast<size_t>(n);
    for (struct nlmsghdr* h = reinterpret_cast<struct nlmsghdr*>(buf); NLMSG_OK(h, len);
         h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != head.nlmsg_seq) continue;  // a stale answer to an earlier request
      const uint8_t* p = reinterpret_cast<const uint8_t*>(h);
      out.insert(out.end(), p, p + NLMSG_ALIGN(h->nlmsg_len));
      if (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type == NLMSG_DONE) done = true;
      // Not a dump and no ack asked for: the one reply is the whole answer.
      if (!(h->nlmsg_flags & NLM_F_MULTI) && !(head.nlmsg_flags & NLM_F_ACK)) done = true;
    }
    if (done) break;
  }
  return Napi::Buffer<uint8_t>::Copy(env, out.data(), out.size());
}

// flock(fd, op) -> 0 | -errno (op: LOCK_EX, LOCK_UN, | LOCK_NB).
Napi::Value Flock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd, op;
  if (!ArgInts(info, {{&fd, "fd"}, {&op, "op"}})) return env.Undefined();
  int r;
  do {
    r = flock(static_cast<int>(fd), static_cast<int>(op));
  } while (r < 0 && errno == EINTR);
  return Napi::Number::New(env, r < 0 ? -errno : 0);
}

}  // namespace

void NetlinkInit(Napi::Env env, Napi::Object exports, Napi::Object constants) {
  exports.Set("nlOpen", Napi::Function::New(env, NlOpen, "nlOpen"));
  exports.Set("nlTransact", Napi::Function::New(env, NlTransact, "nlTransact"));
  exports.Set("flock", Napi::Function::New(env, Flock, "flock"));
  constants.Set("LOCK_EX", Napi::Number::New(env, LOCK_EX));
  constants.Set("LOCK_UN", Napi::Number::New(env, LOCK_UN));
  constants.Set("LOCK_NB", Napi::Number::New(env, LOCK_NB));
}

}  // namespace vxtun
