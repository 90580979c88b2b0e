/* vxtun CNI plugin shim: forwards one invocation (environment + stdin) to the vxtun
 * agent's Unix socket and relays the reply (exit code + stdout). It makes no protocol
 * decisions: if the agent cannot be reached it execs the Node plugin (the slow path),
 * which behaves identically. Framing is described in src/cni/server.ts.
 *
 * Nothing about the build machine is compiled in, so the binary can be copied to any
 * host's CNI bin dir: the slow path's Node and main.js are found at run time (see
 * find_main and find_node), and when they are not there the answer is a CNI error that
 * says what is missing. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/run/vxtun/cni.sock"
/* Where main.js sits in the package (the shim's own build output is beside it). */
#define MAIN_IN_ROOT "/dist/cni/main.js"
/* CNI's "try again later": the agent may come up and answer on its socket. */
#define CNI_TRY_AGAIN_LATER 11

extern char **environ;

static char *in;
static size_t in_len, in_cap;

static void die(const char *m) { perror(m); exit(1); }

static int write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    c += w; n -= (size_t)w;
  }
  return 0;
}

static void read_stdin(void) {
  for (;;) {
    if (in_len == in_cap) {
      in_cap = in_cap ? in_cap * 2 : 65536;
      if (!(in = realloc(in, in_cap))) die("vxtun-cni: realloc");
    }
    ssize_t r = read(0, in + in_len, in_cap - in_len);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) die("vxtun-cni: read stdin");
    if (r == 0) return;
    in_len += (size_t)r;
  }
}

/* A top-level string value of the network configuration: a plain scan for "key"
 * (escapes not supported), enough for the few keys the shim reads. */
static int conf_string(const char *key, char *out, size_t cap) {
  char quoted[64];
  snprintf(quoted, sizeof quoted, "\"%s\"", key);
  const char *p = in ? memmem(in, in_len, quoted, strlen(quoted)) : NULL;
  if (!p) return 0;
  const char *end = in + in_len;
  p += strlen(quoted);
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ':')) p++;
  if (p >= end || *p != '"') return 0;
  p++;
  const char *q = memchr(p, '"', (size_t)(end - p));
  if (!q || (size_t)(q - p) >= cap || (q == p) || memchr(p, '\\', (size_t)(q - p))) return 0;
  memcpy(out, p, (size_t)(q - p));
  out[q - p] = 0;
  return 1;
}

/* The socket: "agentSocket" in the config, else $VXTUN_CNI_SOCKET, else the default. */
static void find_socket(char *out, size_t cap) {
  if (conf_string("agentSocket", out, cap)) return;
  const char *e = getenv("VXTUN_CNI_SOCKET");
  snprintf(out, cap, "%s", e && *e ? e : DEFAULT_SOCKET);
}

/* The Node plugin: $VXTUN_CNI_MAIN, else "vxtunRoot" in the config (the package folder,
 * which `vxtun install-cni` writes), else main.js beside this executable (the shim as
 * built, in dist/cni: the lab runs it from there). Returns 0 and names what it tried. */
static int find_main(char *out, size_t cap, char *tried, size_t tcap) {
  const char *e = getenv("VXTUN_CNI_MAIN");
  if (e && *e) {
    snprintf(out, cap, "%s", e);
    if (access(out, R_OK) == 0) return 1;
    snprintf(tried, tcap, "VXTUN_CNI_MAIN=%s is not readable", e);
    return 0;
  }
  char root[PATH_MAX - sizeof MAIN_IN_ROOT];
  if (conf_string("vxtunRoot", root, sizeof root)) {
    snprintf(out, cap, "%s" MAIN_IN_ROOT, root);
    if (access(out, R_OK) == 0) return 1;
    snprintf(tried, tcap, "no %s (the config's vxtunRoot)", out);
    return 0;
  }
  char self[PATH_MAX - sizeof "/main.js"];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (slash) *slash = 0;
    snprintf(out, cap, "%s/main.js", self);
    if (access(out, R_OK) == 0) return 1;
  }
  snprintf(tried, tcap, "the config has no \"vxtunRoot\" (the vxtun package folder) and no main.js is beside %s",
           n > 0 ? self : "this plugin");
  return 0;
}

/* Node: $VXTUN_CNI_NODE, else "nodePath" in the config, else `node` on $PATH. */
static int find_node(char *out, size_t cap, char *tried, size_t tcap) {
  const char *e = getenv("VXTUN_CNI_NODE");
  if ((e && *e) || conf_string("nodePath", out, cap)) {
    if (e && *e) snprintf(out, cap, "%s", e);
    if (access(out, X_OK) == 0) return 1;
    snprintf(tried, tcap, "%s (%s) is not executable", out, e && *e ? "VXTUN_CNI_NODE" : "the config's nodePath");
    return 0;
  }
  const char *path = getenv("PATH");
  if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
  for (const char *p = path; *p;) {
    const char *colon = strchr(p, ':');
    size_t len = colon ? (size_t)(colon - p) : strlen(p);
    if (len > 0) {
      snprintf(out, cap, "%.*s/node", (int)len, p);
      if (access(out, X_OK) == 0) return 1;
    }
    p += len + (colon ? 1 : 0);
  }
  snprintf(tried, tcap, "no node on PATH (%s) and no \"nodePath\" in the config", path);
  return 0;
}

static void json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c < 0x20) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
  fputc('"', f);
}

/* Neither the agent nor the slow path: the spec's error JSON on stdout, exit 1. */
static void cni_error(const char *socket, const char *missing) {
  char version[32], msg[PATH_MAX + 256];
  if (!conf_string("cniVersion", version, sizeof version)) snprintf(version, sizeof version, "1.0.0");
  snprintf(msg, sizeof msg, "the vxtun agent does not answer on %s and the Node slow path is missing", socket);
  printf("{\"cniVersion\":");
  json_string(stdout, version);
  printf(",\"code\":%d,\"msg\":", CNI_TRY_AGAIN_LATER);
  json_string(stdout, msg);
  printf(",\"details\":");
  json_string(stdout, missing);
  printf("}\n");
  fflush(stdout);
  exit(1);
}

/* No agent: run the Node plugin with the same stdin (replayed from a memfd). */
static void slow_path(const char *socket) {
  char node[PATH_MAX], main_js[PATH_MAX], tried[2 * PATH_MAX + 128];
  if (!find_main(main_js, sizeof main_js, tried, sizeof tried)) cni_error(socket, tried);
  if (!find_node(node, sizeof node, tried, sizeof tried)) cni_error(socket, tried);
  int fd = memfd_create("vxtun-cni-stdin", 0);
  if (fd < 0 || write_all(fd, in, in_len) < 0 || lseek(fd, 0, SEEK_SET) < 0) die("vxtun-cni: memfd");
  if (dup2(fd, 0) < 0) die("vxtun-cni: dup2");
  close(fd);
  char *argv[] = {node, main_js, NULL};
  execv(argv[0], argv);
  die("vxtun-cni: exec node slow path");
}

int main(void) {
  int code = -1;
  read_stdin();
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  find_socket(sa.sun_path, sizeof sa.sun_path);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) slow_path(sa.sun_path);

  size_t env_len = 0;
  for (char **e = environ; *e; e++) env_len += strlen(*e) + 1;
  uint32_t n = htonl((uint32_t)env_len);
  if (write_all(s, &n, 4) < 0) goto lost;
  for (char **e = environ; *e; e++)
    if (write_all(s, *e, strlen(*e) + 1) < 0) goto lost;
  n = htonl((uint32_t)in_len);
  if (write_all(s, &n, 4) < 0 || write_all(s, in, in_len) < 0) goto lost;
  shutdown(s, SHUT_WR);

  unsigned char head[4];
  size_t got = 0;
  char buf[65536];
  for (;;) {
    ssize_t r = read(s, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) goto lost;
    if (r == 0) break;
    size_t off = 0;
    while (got < 4 && off < (size_t)r) head[got++] = (unsigned char)buf[off++];
    if (got == 4 && code < 0) code = (head[0] << 24 | head[1] << 16 | head[2] << 8 | head[3]) & 0xff;
    if (off < (size_t)r && write_all(1, buf + off, (size_t)r - off) < 0) die("vxtun-cni: write stdout");
  }
  if (code >= 0) return code;
lost:
  /* The agent went away before answering (nothing was relayed yet): the slow path runs
   * the same request; ADD replaces its own leftovers and DEL is idempotent. */
  if (code >= 0) die("vxtun-cni: connection to the vxtun agent lost mid-reply");
  close(s);
  slow_path(sa.sun_path);
  return 1;
}
