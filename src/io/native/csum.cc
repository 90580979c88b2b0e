// Csum: the one per-byte loop of the fast path that TypeScript cannot keep up with.
// TSO segmentation and receive coalescing need an Internet checksum over every byte
// that crosses the tunnel (~1 µs per 1400 bytes in TypeScript, 10-20x less here: see
// bench/fastpath-segment.ts). It only sums bytes; which bytes, the pseudo-header and where
// the result goes are decided in TypeScript (src/dataplane/offload/segment.ts, coalesce.ts).
#include "csum.h"

#if defined(__x86_64__)
#include <immintrin.h>  // the AVX2 loop only; other CPUs build the portable one
#endif

#include <algorithm>
#include <cstring>

#include "util.h"

namespace vxtun {

namespace {
// Folds a wide sum of little-endian words to 16 bits and swaps it to network order.
uint32_t FoldSwap(uint64_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  uint32_t le = static_cast<uint32_t>(acc);
  return ((le & 0xff) << 8) | (le >> 8);
}

// Adds the bytes p[i..len) that a wide loop left over (fewer than one turn) to `acc`,
// then folds and swaps.
uint32_t FinishSum(const uint8_t* p, size_t i, size_t len, uint64_t acc) {
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
  return FoldSwap(acc);
}

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
  return FinishSum(p, i, len, (a & 0xffffffffu) + (a >> 32));
}

#if defined(__x86_64__)
// The same sum with AVX2, ~4x the scalar loop on this machine's EPYC (13.9 vs 59 GB/s
// on a cached 64 KB buffer; `sumScalar` is the reference the tests compare against).
// Each 32-byte load is widened to 32-bit lanes (unpack with zero) and added up; a lane
// gains at most one 16-bit word per turn, so 32 KB per chunk (512 turns) cannot
// overflow it, and each chunk's lanes are added into a 64-bit total.
__attribute__((target("avx2"))) uint32_t Sum16Avx2(const uint8_t* p, size_t len) {
  const __m256i zero = _mm256_setzero_si256();
  uint64_t acc = 0;
  size_t i = 0;
  while (i + 64 <= len) {
    size_t end = i + std::min<size_t>((len - i) & ~static_cast<size_t>(63), 32768);
    __m256i s0 = zero, s1 = zero, s2 = zero, s3 = zero;
    for (; i < end; i += 64) {
      __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i));
      __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 32));
      s0 = _mm256_add_epi32(s0, _mm256_unpacklo_epi16(v0, zero));
      s1 = _mm256_add_epi32(s1, _mm256_unpackhi_epi16(v0, zero));
      s2 = _mm256_add_epi32(s2, _mm256_unpacklo_epi16(v1, zero));
      s3 = _mm256_add_epi32(s3, _mm256_unpackhi_epi16(v1, zero));
    }
    // Widen the 32-bit lanes to 64 bits before adding the four together.
    __m256i s = zero;
    for (__m256i v : {s0, s1, s2, s3}) {
      s = _mm256_add_epi64(s, _mm256_unpacklo_epi32(v, zero));
      s = _mm256_add_epi64(s, _mm256_unpackhi_epi32(v, zero));
    }
    uint64_t w[4];
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(w), s);
    acc += w[0] + w[1] + w[2] + w[3];
  }
  return FinishSum(p, i, len, acc);
}
#endif

// Chosen once at load: AVX2 where the CPU has it, else the portable loop. This runs
// as a constructor, possibly before libgcc's CPU detection: hence __builtin_cpu_init.
using SumFn = uint32_t (*)(const uint8_t*, size_t);
SumFn PickSum16() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) return Sum16Avx2;
#endif
  return Sum16;
}
const SumFn Sum16Best = PickSum16();
}  // namespace

const char* CsumLoopName() { return Sum16Best == Sum16 ? "scalar" : "avx2"; }

Napi::Function Csum::Init(Napi::Env env) {
  return DefineClass(env, "Csum",
                     {InstanceMethod<&Csum::Sum>("sum"), InstanceMethod<&Csum::SumMany>("sumMany"),
                      InstanceMethod<&Csum::SumScalar>("sumScalar")});
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
    out_[i] = static_cast<uint64_t>(off) + len > len_ ? 0 : Sum16Best(data_ + off, len);
  }
  return env.Undefined();
}

namespace {
// [off, off+len) of `data` (size bytes) summed by `fn`; 0 for a range outside it.
Napi::Value SumRange(const Napi::CallbackInfo& info, const uint8_t* data, size_t size,
                     SumFn fn) {
  uint32_t off = info[0].As<Napi::Number>().Uint32Value();
  uint32_t len = info[1].As<Napi::Number>().Uint32Value();
  uint32_t r = data == nullptr || static_cast<uint64_t>(off) + len > size ? 0 : fn(data + off, len);
  return Napi::Number::New(info.Env(), r);
}
}  // namespace

// sum(off, len) -> folded (not complemented) 16-bit one's-complement sum of
// slab[off, off+len); 0 for a range outside the slab (callers check lengths first).
Napi::Value Csum::Sum(const Napi::CallbackInfo& info) {
  return SumRange(info, data_, len_, Sum16Best);
}

// sumScalar(off, len): sum() with the portable loop, whatever the CPU has; the tests
// hold the vector loop to it.
Napi::Value Csum::SumScalar(const Napi::CallbackInfo& info) {
  return SumRange(info, data_, len_, Sum16);
}

}  // namespace vxtun
