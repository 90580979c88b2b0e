// The floor of a user-space overlay hop, for bench/ping-floor.ts: the least a
// forwarder can do and still be one. A TUN device and a connected UDP socket; every
// packet read from the TUN gets an 8-byte VXLAN header and a 14-byte Ethernet header
// written in front of it and is sent to the peer; every datagram received loses them
// and is written to the TUN. One thread, blocking epoll, one packet per syscall, no
// lookups, no checks beyond lengths. Not part of vxtun: it has no tables, no policy
// and no counters; it exists to say what waking up and crossing the kernel twice costs
// on this machine, so that vxtun's latency can be read against it.
//   relay <tun-name> <peer-ipv4> <udp-port>
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

enum { HDR = 22, CAP = 65536 };

static int die(const char* what) {
  perror(what);
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: relay <tun-name> <peer-ipv4> <udp-port>\n");
    return 2;
  }
  int tun = open("/dev/net/tun", O_RDWR);
  if (tun < 0) return die("open /dev/net/tun");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
  if (ioctl(tun, TUNSETIFF, &ifr) < 0) return die("TUNSETIFF");

  int udp = socket(AF_INET, SOCK_DGRAM, 0);
  if (udp < 0) return die("socket");
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)atoi(argv[3]));
  if (bind(udp, (struct sockaddr*)&sa, sizeof sa) < 0) return die("bind");
  if (inet_pton(AF_INET, argv[2], &sa.sin_addr) != 1) {
    fprintf(stderr, "relay: bad peer address %s\n", argv[2]);
    return 2;
  }
  if (connect(udp, (struct sockaddr*)&sa, sizeof sa) < 0) return die("connect");

  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN};
  ev.data.fd = tun;
  epoll_ctl(ep, EPOLL_CTL_ADD, tun, &ev);
  ev.data.fd = udp;
  epoll_ctl(ep, EPOLL_CTL_ADD, udp, &ev);

  static unsigned char buf[HDR + CAP];
  // VXLAN: flags 0x08 (VNI valid), VNI 1; Ethernet: zero MACs, type IPv4.
  static const unsigned char hdr[HDR] = {0x08, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
                                         0,    0, 0, 0, 0, 0, 0x08, 0x00};
  fprintf(stderr, "relay: %s <-> udp %s:%s\n", argv[1], argv[2], argv[3]);
  for (;;) {
    struct epoll_event got[2];
    int n = epoll_wait(ep, got, 2, -1);
    for (int i = 0; i < n; i++) {
      if (got[i].data.fd == tun) {
        ssize_t r = read(tun, buf + HDR, CAP);
        if (r <= 0) continue;
        memcpy(buf, hdr, HDR);
        send(udp, buf, (size_t)r + HDR, 0);
      } else {
        ssize_t r = recv(udp, buf, sizeof buf, 0);
        if (r <= HDR) continue;
        if (write(tun, buf + HDR, (size_t)r - HDR) < 0) continue;
      }
    }
  }
}
