// vxtun_native: a thin driver. It opens and configures TUN/TAP devices and sockets and
// moves batches of bytes between the kernel and one shared slab (io.cc). It never
// looks inside a packet: every protocol decision lives in TypeScript.
//
// Configuration calls here are deliberately one syscall each and return -errno (or
// throw for "open"-type calls) so that TypeScript composes them and owns the policy.

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "csum.h"
#include "io.h"
#include "netlink.h"
#include "util.h"

namespace vxtun {
namespace {

// tunOpen(name: string, flags: number) -> { fd, name }. `name` may be "" or a
// template such as "vxt%d"; the kernel's choice comes back in `name`.
Napi::Value TunOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString()) return ThrowType(env, "tunOpen(name, flags)");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  int64_t flags;
  if (!ArgInt(info, 1, &flags, "flags")) return env.Undefined();
  if (name.size() >= IFNAMSIZ) return ThrowType(env, "interface name longer than 15 bytes");

  // O_NONBLOCK: reads are driven by readiness (uv_poll) and must never block the loop.
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return ThrowErrno(env, "open /dev/net/tun", errno);
  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof ifr);
  std::memcpy(ifr.ifr_name, name.data(), name.size());
  ifr.ifr_flags = static_cast<short>(flags);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    return ThrowErrno(env, "TUNSETIFF " + (name.empty() ? std::string("(auto)") : name), err);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", Napi::Number::New(env, fd));
  out.Set("name", Napi::String::New(env, ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ)));
  return out;
}

// tunIoctl(fd, which, value) -> 0 | -errno. which: 0 persist, 1 offload, 2 vnet hdr size.
// TUNSETPERSIST and TUNSETOFFLOAD take the value itself; TUNSETVNETHDRSZ a pointer.
Napi::Value TunIoctl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd, which, value;
  if (!ArgInts(info, {{&fd, "fd"}, {&which, "which"}, {&value, "value"}})) return env.Undefined();
  int r;
  switch (which) {
    case 0:
      r = ioctl(static_cast<int>(fd), TUNSETPERSIST, static_cast<unsigned long>(value));
      break;
    case 1:
      r = ioctl(static_cast<int>(fd), TUNSETOFFLOAD, static_cast<unsigned long>(value));
      break;
    case 2: {
      int sz = static_cast<int>(value);
      r = ioctl(static_cast<int>(fd), TUNSETVNETHDRSZ, &sz);
      break;
    }
    default:
      return ThrowType(env, "tunIoctl: unknown request");
  }
  return Napi::Number::New(env, r < 0 ? -errno : 0);
}

// socket(domain, type, protocol) -> fd. Always non-blocking and close-on-exec.
Napi::Value Socket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t d, t, p;
  if (!ArgInts(info, {{&d, "domain"}, {&t, "type"}, {&p, "protocol"}})) return env.Undefined();
  int fd = socket(static_cast<int>(d), static_cast<int>(t) | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  static_cast<int>(p));
  if (fd < 0) return ThrowErrno(env, "socket", errno);
  return Napi::Number::New(env, fd);
}

// setsockoptInt(fd, level, name, value) -> 0 | -errno (probing needs the errno, not a throw).
Napi::Value SetsockoptInt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd, level, name, value;
  if (!ArgInts(info, {{&fd, "fd"}, {&level, "level"}, {&name, "name"}, {&value, "value"}}))
    return env.Undefined();
  int v = static_cast<int>(value);
  int r = setsockopt(static_cast<int>(fd), static_cast<int>(level), static_cast<int>(name), &v,
                     sizeof v);
  return Napi::Number::New(env, r < 0 ? -errno : 0);
}

// attachFilter(fd, program) -> 0 | -errno: SO_ATTACH_FILTER with a classic BPF program
// that TypeScript assembled (src/underlay/bpf.ts): `program` holds struct sock_filter
// entries (8 bytes each, host byte order). The kernel copies it; nothing is kept here.
Napi::Value AttachFilter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd;
  if (!ArgInt(info, 0, &fd, "fd")) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsTypedArray()) {
    Napi::TypeError::New(env, "program: expected a Uint8Array").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Uint8Array prog = info[1].As<Napi::Uint8Array>();
  if (prog.ByteLength() == 0 || prog.ByteLength() % sizeof(sock_filter) != 0 ||
      prog.ByteLength() / sizeof(sock_filter) > BPF_MAXINSNS) {
    Napi::RangeError::New(env, "program: 1..4096 instructions of 8 bytes")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  sock_fprog fprog;
  fprog.len = static_cast<unsigned short>(prog.ByteLength() / sizeof(sock_filter));
  fprog.filter = reinterpret_cast<sock_filter*>(prog.Data());
  int r = setsockopt(static_cast<int>(fd), SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof fprog);
  return Napi::Number::New(env, r < 0 ? -errno : 0);
}

// getsockoptInt(fd, level, name) -> value; throws on error.
Napi::Value GetsockoptInt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd, level, name;
  if (!ArgInts(info, {{&fd, "fd"}, {&level, "level"}, {&name, "name"}})) return env.Undefined();
  int v = 0;
  socklen_t len = sizeof v;
  if (getsockopt(static_cast<int>(fd), static_cast<int>(level), static_cast<int>(name), &v,
                 &len) < 0)
    return ThrowErrno(env, "getsockopt", errno);
  return Napi::Number::New(env, v);
}

// bind4(fd, addr /* uint32 host order */, port)
Napi::Value Bind4(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd, addr, port;
  if (!ArgInts(info, {{&fd, "fd"}, {&addr, "addr"}, {&port, "port"}})) return env.Undefined();
  struct sockaddr_in sa;
  SetSockaddr4(&sa, static_cast<uint32_t>(addr), static_cast<uint16_t>(port));
  if (bind(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0)
    return ThrowErrno(env, "bind", errno);
  return env.Undefined();
}

// bind6(fd, addr: Uint8Array(16), port): an AF_INET6 socket, IPv6 only (no IPv4-mapped
// traffic: an IPv6 underlay is one family, as the kernel's vxlan with a `local` IPv6).
Napi::Value Bind6(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd, port;
  if (!ArgInt(info, 0, &fd, "fd") || !ArgInt(info, 2, &port, "port")) return env.Undefined();
  size_t n;
  uint8_t* a = TypedData<uint8_t>(env, info[1], napi_uint8_array, &n, "addr");
  if (a == nullptr) return env.Undefined();
  if (n != 16) return ThrowType(env, "bind6: addr must be 16 bytes");
  struct sockaddr_in6 sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sin6_family = AF_INET6;
  sa.sin6_port = htons(static_cast<uint16_t>(port));
  std::memcpy(&sa.sin6_addr, a, 16);
  if (bind(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0)
    return ThrowErrno(env, "bind", errno);
  return env.Undefined();
}

// getsockname6(fd, out: Uint8Array(16)) -> port; the address is written to `out`.
Napi::Value Getsockname6(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd;
  if (!ArgInt(info, 0, &fd, "fd")) return env.Undefined();
  size_t n;
  uint8_t* out = TypedData<uint8_t>(env, info[1], napi_uint8_array, &n, "out");
  if (out == nullptr) return env.Undefined();
  if (n < 16) return ThrowType(env, "getsockname6: out must hold 16 bytes");
  struct sockaddr_in6 sa;
  socklen_t len = sizeof sa;
  std::memset(&sa, 0, sizeof sa);
  if (getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&sa), &len) < 0)
    return ThrowErrno(env, "getsockname", errno);
  std::memcpy(out, &sa.sin6_addr, 16);
  return Napi::Number::New(env, ntohs(sa.sin6_port));
}

// getsockname4(fd) -> [addr, port]
Napi::Value Getsockname4(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd;
  if (!ArgInt(info, 0, &fd, "fd")) return env.Undefined();
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  std::memset(&sa, 0, sizeof sa);
  if (getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&sa), &len) < 0)
    return ThrowErrno(env, "getsockname", errno);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, ntohl(sa.sin_addr.s_addr)));
  out.Set(1u, Napi::Number::New(env, ntohs(sa.sin_port)));
  return out;
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd;
  if (!ArgInt(info, 0, &fd, "fd")) return env.Undefined();
  int r = close(static_cast<int>(fd));
  return Napi::Number::New(env, r < 0 ? -errno : 0);
}

// setns(fd, nstype): moves the calling (main) thread into the namespace behind fd.
// Sockets and TUN devices created afterwards belong to it for their whole life.
Napi::Value Setns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd, type;
  if (!ArgInts(info, {{&fd, "fd"}, {&type, "nstype"}})) return env.Undefined();
  if (setns(static_cast<int>(fd), static_cast<int>(type)) < 0)
    return ThrowErrno(env, "setns", errno);
  return env.Undefined();
}

void SetConst(Napi::Env env, Napi::Object o, const char* name, int64_t v) {
  o.Set(name, Napi::Number::New(env, static_cast<double>(v)));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("tunOpen", Napi::Function::New(env, TunOpen, "tunOpen"));
  exports.Set("tunIoctl", Napi::Function::New(env, TunIoctl, "tunIoctl"));
  exports.Set("socket", Napi::Function::New(env, Socket, "socket"));
  exports.Set("setsockoptInt", Napi::Function::New(env, SetsockoptInt, "setsockoptInt"));
  exports.Set("getsockoptInt", Napi::Function::New(env, GetsockoptInt, "getsockoptInt"));
  exports.Set("attachFilter", Napi::Function::New(env, AttachFilter, "attachFilter"));
  exports.Set("bind4", Napi::Function::New(env, Bind4, "bind4"));
  exports.Set("getsockname4", Napi::Function::New(env, Getsockname4, "getsockname4"));
  exports.Set("bind6", Napi::Function::New(env, Bind6, "bind6"));
  exports.Set("getsockname6", Napi::Function::New(env, Getsockname6, "getsockname6"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("setns", Napi::Function::New(env, Setns, "setns"));
  exports.Set("Io", Io::Init(env));
  exports.Set("Csum", Csum::Init(env));
  exports.Set("csumLoop", Napi::String::New(env, CsumLoopName()));

  // Constants come from the system headers so TypeScript never hard-codes ABI numbers.
  Napi::Object c = Napi::Object::New(env);
  SetConst(env, c, "IFF_TUN", IFF_TUN);
  SetConst(env, c, "IFF_TAP", IFF_TAP);
  SetConst(env, c, "IFF_NO_PI", IFF_NO_PI);
  SetConst(env, c, "IFF_VNET_HDR", IFF_VNET_HDR);
  SetConst(env, c, "IFF_MULTI_QUEUE", IFF_MULTI_QUEUE);
  SetConst(env, c, "TUN_F_CSUM", TUN_F_CSUM);
  SetConst(env, c, "TUN_F_TSO4", TUN_F_TSO4);
  SetConst(env, c, "TUN_F_TSO6", TUN_F_TSO6);
  SetConst(env, c, "TUN_F_TSO_ECN", TUN_F_TSO_ECN);
  SetConst(env, c, "TUN_F_USO4", TUN_F_USO4);
  SetConst(env, c, "TUN_F_USO6", TUN_F_USO6);
  SetConst(env, c, "AF_INET", AF_INET);
  SetConst(env, c, "AF_INET6", AF_INET6);
  SetConst(env, c, "SOL_IPV6", SOL_IPV6);
  SetConst(env, c, "IPV6_V6ONLY", IPV6_V6ONLY);
  SetConst(env, c, "IPV6_RECVERR", IPV6_RECVERR);
  SetConst(env, c, "IPV6_MTU_DISCOVER", IPV6_MTU_DISCOVER);
  SetConst(env, c, "IPV6_PMTUDISC_DONT", IPV6_PMTUDISC_DONT);
  SetConst(env, c, "IPV6_PMTUDISC_WANT", IPV6_PMTUDISC_WANT);
  SetConst(env, c, "IPV6_PMTUDISC_DO", IPV6_PMTUDISC_DO);
  SetConst(env, c, "IPV6_PMTUDISC_PROBE", IPV6_PMTUDISC_PROBE);
  SetConst(env, c, "IPV6_UNICAST_HOPS", IPV6_UNICAST_HOPS);
  SetConst(env, c, "IPV6_TCLASS", IPV6_TCLASS);
  SetConst(env, c, "SOCK_DGRAM", SOCK_DGRAM);
  SetConst(env, c, "SOCK_RAW", SOCK_RAW);
  SetConst(env, c, "IPPROTO_UDP", IPPROTO_UDP);
  SetConst(env, c, "IPPROTO_IPIP", IPPROTO_IPIP);
  SetConst(env, c, "SOL_SOCKET", SOL_SOCKET);
  SetConst(env, c, "SO_REUSEADDR", SO_REUSEADDR);
  SetConst(env, c, "SO_REUSEPORT", SO_REUSEPORT);
  SetConst(env, c, "SO_RCVBUF", SO_RCVBUF);
  SetConst(env, c, "SO_SNDBUF", SO_SNDBUF);
  SetConst(env, c, "SO_RCVBUFFORCE", SO_RCVBUFFORCE);
  SetConst(env, c, "SO_SNDBUFFORCE", SO_SNDBUFFORCE);
  SetConst(env, c, "SOL_IP", SOL_IP);
  SetConst(env, c, "IP_HDRINCL", IP_HDRINCL);
  SetConst(env, c, "IP_MTU_DISCOVER", IP_MTU_DISCOVER);
  SetConst(env, c, "IP_PMTUDISC_DONT", IP_PMTUDISC_DONT);
  SetConst(env, c, "IP_PMTUDISC_WANT", IP_PMTUDISC_WANT);
  SetConst(env, c, "IP_PMTUDISC_DO", IP_PMTUDISC_DO);
  SetConst(env, c, "IP_PMTUDISC_PROBE", IP_PMTUDISC_PROBE);
  SetConst(env, c, "IP_RECVERR", IP_RECVERR);
  SetConst(env, c, "SOL_UDP", SOL_UDP);
  SetConst(env, c, "UDP_SEGMENT", UDP_SEGMENT);
  SetConst(env, c, "UDP_GRO", UDP_GRO);
  SetConst(env, c, "IP_TOS", IP_TOS);
  SetConst(env, c, "IP_TTL", IP_TTL);
  SetConst(env, c, "CLONE_NEWNET", CLONE_NEWNET);
  SetConst(env, c, "IO_KIND_TUN", Io::kTun);
  SetConst(env, c, "IO_KIND_SOCKET", Io::kSocket);
  SetConst(env, c, "MAX_BATCH", Io::kMaxBatch);
  for (int i = 0; i < Io::kStatCount; i++) {
    // Counter indices, so the TypeScript names cannot drift from the C++ ones.
    SetConst(env, c, (std::string("STAT_") + Io::StatName(i)).c_str(), i);
  }
  SetConst(env, c, "STAT_COUNT", Io::kStatCount);
  NetlinkInit(env, exports, c);
  exports.Set("constants", c);
  return exports;
}

}  // namespace
}  // namespace vxtun

static Napi::Object InitVxtun(Napi::Env env, Napi::Object exports) {
  return vxtun::Init(env, exports);
}

NODE_API_MODULE(vxtun_native, InitVxtun)
