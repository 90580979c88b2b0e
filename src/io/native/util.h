// Small helpers shared by the addon's translation units: errno → JS errors and typed
// array access. Everything here runs on the main (JS) thread.
#pragma once

#include <napi.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>

// Debian 12's kernel headers predate UDP segmentation offload on TUN (Linux 6.2) and
// UDP GSO/GRO socket options may be missing on older libcs; the values are kernel ABI.
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

namespace vxtun {

// "ENODEV" for ENODEV, "E123" for unknown numbers: JS code matches on err.code.
const char* ErrnoName(int err);

// One-line message: "<what>: <strerror> (<ENAME>)".
std::string ErrnoMessage(const std::string& what, int err);

// An Error with .code (e.g. "EBADFD") and .errno (positive number), so TypeScript can
// branch on the cause without parsing the message.
Napi::Error MakeErrnoError(Napi::Env env, const std::string& what, int err);

// Throws (as a pending JS exception) and returns undefined, for `return Throw...;`.
Napi::Value ThrowErrno(Napi::Env env, const std::string& what, int err);
Napi::Value ThrowType(Napi::Env env, const std::string& msg);

// Pointer + element count of a typed array of the expected element type, or nullptr
// (with a pending TypeError) when `v` is something else. The backing stores we are
// handed are allocated with `new ArrayBuffer(n)` in TypeScript, i.e. off-heap and
// never moved by the GC, so caching the pointer for the object's lifetime is safe as
// long as we also hold a reference to the array.
template <typename T>
T* TypedData(Napi::Env env, Napi::Value v, napi_typedarray_type type, size_t* length,
             const char* what);

// Argument helpers: return false with a pending TypeError when the argument is wrong.
bool ArgInt(const Napi::CallbackInfo& info, size_t i, int64_t* out, const char* what);

// Arguments 0, 1, 2 … as integers, e.g. ArgInts(info, {{&fd, "fd"}, {&level, "level"}}).
struct IntArg {
  int64_t* out;
  const char* what;
};
bool ArgInts(const Napi::CallbackInfo& info, std::initializer_list<IntArg> args);

// An IPv4 socket address; addr in host byte order.
inline void SetSockaddr4(struct sockaddr_in* sa, uint32_t addr, uint16_t port) {
  std::memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  sa->sin_addr.s_addr = htonl(addr);
  sa->sin_port = htons(port);
}

// Errors after which a TUN fd can never deliver again (device deleted or detached).
inline bool TunFatal(int err) {
  return err == EBADFD || err == EBADF || err == EIO || err == ENODEV || err == ENXIO ||
         err == EPIPE;
}

}  // namespace vxtun
