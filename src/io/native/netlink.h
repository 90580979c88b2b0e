// rtnetlink transport and flock (netlink.cc), registered by addon.cc's Init.
#pragma once

#include <napi.h>

namespace vxtun {

void NetlinkInit(Napi::Env env, Napi::Object exports, Napi::Object constants);

}  // namespace vxtun
