/*
 * tun-open: attaches to a TUN device and runs a program with it as file descriptor 3.
 *
 *   tun-open <ifname> <program> [args...]
 *
 * Node cannot issue ioctl(TUNSETIFF), so the WAN emulator (wan-router.ts) is started through this:
 * the device (created beforehand with `ip tuntap add dev <ifname> mode tun`, so addresses and routes
 * can be set before the emulator runs) is opened without packet information (IFF_NO_PI: every
 * read and write is one bare IP packet), moved to fd 3 and inherited by the program.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: tun-open <ifname> <program> [args...]\n");
    return 2;
  }
  if (strlen(argv[1]) >= IFNAMSIZ) {
    fprintf(stderr, "tun-open: interface name %s is too long\n", argv[1]);
    return 2;
  }
  int fd = open("/dev/net/tun", O_RDWR);
  if (fd < 0) {
    fprintf(stderr, "tun-open: /dev/net/tun: %s\n", strerror(errno));
    return 1;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    fprintf(stderr, "tun-open: TUNSETIFF %s: %s\n", argv[1], strerror(errno));
    return 1;
  }
  if (fd != 3) {
    if (dup2(fd, 3) < 0) {
      fprintf(stderr, "tun-open: dup2: %s\n", strerror(errno));
      return 1;
    }
    close(fd);
  }
  execvp(argv[2], &argv[2]);
  fprintf(stderr, "tun-open: cannot run %s: %s\n", argv[2], strerror(errno));
  return 127;
}
