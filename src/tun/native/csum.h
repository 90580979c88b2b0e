#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace vxtun {

class Csum : public Napi::ObjectWrap<Csum> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Csum(const Napi::CallbackInfo& info);

 private:
  Napi::Value Sum(const Napi::CallbackInfo& info);
  const uint8_t* data_ = nullptr;
  size_t len_ = 0;
  Napi::ObjectReference keep_;
};

}  // namespace vxtun
