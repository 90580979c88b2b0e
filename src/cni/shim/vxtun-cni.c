/* vxtun CNI plugin shim: forwards one invocation (environment + stdin) to the vxtun
 * agent's Unix socket and relays the reply (exit code + stdout). It makes no protocol
 * decisions: if the agent cannot be reached it execs the Node plugin (the slow path),
 * which behaves identically. Framing is described in src/cni/server.ts. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef VXTUN_NODE
#define VXTUN_NODE "/usr/bin/node"
#endif
#ifndef VXTUN_MAIN
#define VXTUN_MAIN "/usr/lib/vxtun/dist/cni/main.js"
#endif
#define DEFAULT_SOCKET "/run/vxtun/cni.sock"

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

/* The socket: "agentSocket" in the config (plain string scan; escapes not supported),
 * else $VXTUN_CNI_SOCKET, else the default. */
static void find_socket(char *out, size_t cap) {
  const char *key = "\"agentSocket\"", *p = in ? memmem(in, in_len, key, strlen(key)) : NULL;
  if (p) {
    const char *end = in + in_len;
    p += strlen(key);
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ':')) p++;
    if (p < end && *p == '"') {
      p++;
      const char *q = memchr(p, '"', (size_t)(end - p));
      if (q && (size_t)(q - p) < cap && !memchr(p, '\\', (size_t)(q - p))) {
        memcpy(out, p, (size_t)(q - p));
        out[q - p] = 0;
        return;
      }
    }
  }
  const char *e = getenv("VXTUN_CNI_SOCKET");
  snprintf(out, cap, "%s", e && *e ? e : DEFAULT_SOCKET);
}

/* No agent: run the Node plugin with the same stdin (replayed from a memfd). */
static void slow_path(void) {
  const char *node = getenv("VXTUN_CNI_NODE"), *main_js = getenv("VXTUN_CNI_MAIN");
  int fd = memfd_create("vxtun-cni-stdin", 0);
  if (fd < 0 || write_all(fd, in, in_len) < 0 || lseek(fd, 0, SEEK_SET) < 0) die("vxtun-cni: memfd");
  if (dup2(fd, 0) < 0) die("vxtun-cni: dup2");
  close(fd);
  char *argv[] = {(char *)(node && *node ? node : VXTUN_NODE),
                  (char *)(main_js && *main_js ? main_js : VXTUN_MAIN), NULL};
  execv(argv[0], argv);
  die("vxtun-cni: exec node slow path");
}

int main(void) {
  int code = -1;
  read_stdin();
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  find_socket(sa.sun_path, sizeof sa.sun_path);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) slow_path();

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
  slow_path();
  return 1;
}
