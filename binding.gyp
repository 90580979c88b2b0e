{
  "targets": [
    {
      "target_name": "vxtun_native",
      "sources": [
        "src/io/native/addon.cc",
        "src/io/native/csum.cc",
        "src/io/native/io.cc",
        "src/io/native/io_send.cc",
        "src/io/native/netlink.cc",
        "src/io/native/util.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-O2", "-fno-exceptions"],
      "conditions": [
        ["OS!='linux'", { "type": "none" }]
      ]
    }
  ]
}
