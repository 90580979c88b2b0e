#include "util.h"

#include <cerrno>
#include <cstring>

namespace vxtun {

const char* ErrnoName(int err) {
  switch (err) {
#define E(x) \
  case x:    \
    return #x;
    E(EPERM) E(ENOENT) E(EINTR) E(EIO) E(ENXIO) E(EBADF) E(EAGAIN) E(ENOMEM) E(EACCES)
    E(EFAULT) E(EBUSY) E(EEXIST) E(ENODEV) E(EINVAL) E(ENFILE) E(EMFILE) E(ENOTTY)
    E(ENOSPC) E(EPIPE) E(ENAMETOOLONG) E(ENOSYS) E(EBADFD) E(ENOTSOCK) E(EDESTADDRREQ)
    E(EMSGSIZE) E(EPROTOTYPE) E(ENOPROTOOPT) E(EPROTONOSUPPORT) E(EOPNOTSUPP)
    E(EAFNOSUPPORT) E(EADDRINUSE) E(EADDRNOTAVAIL) E(ENETDOWN) E(ENETUNREACH)
    E(ECONNABORTED) E(ECONNRESET) E(ENOBUFS) E(EISCONN) E(ENOTCONN) E(ETIMEDOUT)
    E(ECONNREFUSED) E(EHOSTDOWN) E(EHOSTUNREACH) E(EALREADY) E(EINPROGRESS) E(ERANGE)
#undef E
    default:
      return nullptr;
  }
}

std::string ErrnoMessage(const std::string& what, int err) {
  const char* name = ErrnoName(err);
  std::string msg = what + ": " + std::strerror(err) + " (";
  msg += name != nullptr ? name : ("E" + std::to_string(err));
  msg += ")";
  return msg;
}

Napi::Error MakeErrnoError(Napi::Env env, const std::string& what, int err) {
  Napi::Error e = Napi::Error::New(env, ErrnoMessage(what, err));
  const char* name = ErrnoName(err);
  e.Set("code", Napi::String::New(env, name != nullptr ? name : ("E" + std::to_string(err))));
  e.Set("errno", Napi::Number::New(env, err));
  return e;
}

Napi::Value ThrowErrno(Napi::Env env, const std::string& what, int err) {
  MakeErrnoError(env, what, err).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value ThrowType(Napi::Env env, const std::string& msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
  return env.Undefined();
}

template <typename T>
T* TypedData(Napi::Env env, Napi::Value v, napi_typedarray_type type, size_t* length,
             const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) {
    ThrowType(env, std::string(what) + " must be a typed array of the right element type");
    return nullptr;
  }
  auto arr = v.As<Napi::TypedArrayOf<T>>();
  *length = arr.ElementLength();
  return arr.Data();
}

template uint8_t* TypedData<uint8_t>(Napi::Env, Napi::Value, napi_typedarray_type, size_t*,
                                     const char*);
template uint16_t* TypedData<uint16_t>(Napi::Env, Napi::Value, napi_typedarray_type, size_t*,
                                       const char*);
template uint32_t* TypedData<uint32_t>(Napi::Env, Napi::Value, napi_typedarray_type, size_t*,
                                       const char*);
template double* TypedData<double>(Napi::Env, Napi::Value, napi_typedarray_type, size_t*,
                                   const char*);

bool ArgInt(const Napi::CallbackInfo& info, size_t i, int64_t* out, const char* what) {
  if (i >= info.Length() || !info[i].IsNumber()) {
    ThrowType(info.Env(), std::string(what) + " must be a number");
    return false;
  }
  *out = info[i].As<Napi::Number>().Int64Value();
  return true;
}

bool ArgInts(const Napi::CallbackInfo& info, std::initializer_list<IntArg> args) {
  size_t i = 0;
  for (const IntArg& a : args) {
    if (!ArgInt(info, i++, a.out, a.what)) return false;
  }
  return true;
}

}  // namespace vxtun
