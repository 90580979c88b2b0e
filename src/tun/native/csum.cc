// Csum: the one per-byte loop of the fast path that TypeScript cannot keep up with.
// TSO segmentation and receive coalescing need an Internet checksum over every byte
// that crosses the tunnel (~1 µs per 1400 bytes in TypeScript, 10-20x less here: see
// bench/fastpath-csum.ts). It only sums bytes; which bytes, the pseudo-header and where
// the result goes are decided in TypeScript (src/dataplane/segment.ts, coalesce.ts).
#include "csum.h"

#include <algorithm>
#include <cstring>

#include "util.h"

namespace vxtun {

namespace {
// One's-complement sum of p[0..len) as big-endian 16-bit words, folded to 16 bits.
// Sums native (little-endian) words 8 bytes at a time, then swaps: RFC 1071 §2(B).
uint32_t Sum16(const uint8_t* p, size_t len) {
  // Two 64-bit accumulators with end-around carry, 32 bytes per turn.
  uint64_t a = 0, b = 0;
  size_t i = 0;
  for (; i + 32 <= len; i += 32) {
    uint64_t w[4];
    std::memcpy(w, p + i, 32);
    a += w[0];
    a += (a < w[0]);
    b += w[1];
    b += (b < w[1]);
    a += w[2];
    a += (a < w[2]);
    b += w[3];
    b += (b < w[3]);
  }
  a += b;
  a += (a < b);
  uint64_t acc = (a & 0xffffffffu) + (a >> 32);
  for (; i + 4 <= len; i += 4) {
    uint32_t w;
    std::memcpy(&w, p + i, 4);
    acc += w;
  }
  for (; i + 2 <= len; i += 2) {
    uint16_t w;
    std::memcpy(&w, p + i, 2);
    acc += w;
  }
  if (i < len) acc += p[i];  // little-endian: the odd byte is the high byte of BE word
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  uint32_t le = static_cast<uint32_t>(acc);
  return ((le & 0xff) << 8) | (le >> 8);
}
}  // namespace

Napi::Function Csum::Init(Napi::Env env) {
  return DefineClass(env, "Csum",
                     {InstanceMethod<&Csum::Sum>("sum"), InstanceMethod<&Csum::SumMany>("sumMany")});
}

// new Csum(slab: ArrayBuffer, offs?: Uint32Array, lens?: Uint32Array, out?: Uint32Array)
Csum::Csum(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Csum>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) {
    ThrowType(env, "Csum(slab: ArrayBuffer)");
    return;
  }
  auto ab = info[0].As<Napi::ArrayBuffer>();
  data_ = static_cast<const uint8_t*>(ab.Data());
  len_ = ab.ByteLength();
  keep_ = Napi::Persistent(ab.As<Napi::Object>());
  if (info.Length() >= 4) {
    size_t a, b, c;
    offs_ = TypedData<uint32_t>(env, info[1], napi_uint32_array, &a, "offs");
    if (offs_ == nullptr) return;
    lens_ = TypedData<uint32_t>(env, info[2], napi_uint32_array, &b, "lens");
    if (lens_ == nullptr) return;
    out_ = TypedData<uint32_t>(env, info[3], napi_uint32_array, &c, "out");
    if (out_ == nullptr) return;
    many_ = std::min({a, b, c});
    keepOffs_ = Napi::Persistent(info[1].As<Napi::Object>());
    keepLens_ = Napi::Persistent(info[2].As<Napi::Object>());
    keepOut_ = Napi::Persistent(info[3].As<Napi::Object>());
  }
}

// sumMany(count): out[i] = sum(offs[i], lens[i]) for i < count; one call per batch of
// ranges instead of one per segment (the call costs as much as summing 1 KB).
Napi::Value Csum::SumMany(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t n = info[0].As<Napi::Number>().Uint32Value();
  if (n > many_) n = static_cast<uint32_t>(many_);
  for (uint32_t i = 0; i < n; i++) {
    uint32_t off = offs_[i], len = lens_[i];
    out_[i] = static_cast<uint64_t>(off) + len > len_ ? 0 : Sum16(data_ + off, len);
  }
  return env.Undefined();
}

// sum(off, len) -> folded (not complemented) 16-bit one's-complement sum of
// slab[off, off+len); 0 for a range outside the slab (callers check lengths first).
Napi::Value Csum::Sum(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t off = info[0].As<Napi::Number>().Uint32Value();
  uint32_t len = info[1].As<Napi::Number>().Uint32Value();
  if (data_ == nullptr || static_cast<uint64_t>(off) + len > len_) return Napi::Number::New(env, 0);
  return Napi::Number::New(env, Sum16(data_ + off, len));
}

}  // namespace vxtun
