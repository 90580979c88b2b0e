#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace vxtun {

// Which loop sums: "avx2" or "scalar" (`vxtun stats` shows it on its offload line).
const char* CsumLoopName();

class Csum : public Napi::ObjectWrap<Csum> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Csum(const Napi::CallbackInfo& info);

 private:
  Napi::Value Sum(const Napi::CallbackInfo& info);
  Napi::Value SumMany(const Napi::CallbackInfo& info);
  Napi::Value SumScalar(const Napi::CallbackInfo& info);
  const uint8_t* data_ = nullptr;
  size_t len_ = 0;
  Napi::ObjectReference keep_;
  // sumMany's ranges and results (offsets, lengths in, sums out), cached at construction.
  const uint32_t* offs_ = nullptr;
  const uint32_t* lens_ = nullptr;
  uint32_t* out_ = nullptr;
  size_t many_ = 0;
  Napi::ObjectReference keepOffs_, keepLens_, keepOut_;
};

}  // namespace vxtun
