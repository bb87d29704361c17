// UDP reflector for the relay benchmark: echoes every datagram back to its sender, byte for byte.
//
// In the benchmark it plays three roles at once: the far end of the direct path, the TURN peer
// behind coturn, and the "transceiver" behind voice-edge's relay (a tunnel datagram echoed verbatim
// to the relay is a valid return-path packet for the same client).
//
// Usage: reflector [--bind 127.0.0.1] [--port 0]
// Prints "port <n>" on stdout once bound, then runs until killed. Counters go to stderr on SIGUSR1.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64
#define MAX_DATAGRAM 2048
#define SOCKET_BUFFER (8 * 1024 * 1024)

static volatile sig_atomic_t report_requested = 0;

static void on_usr1(int signo) {
  (void)signo;
  report_requested = 1;
}

static void set_buffer(int fd, int option_force, int option, int size) {
  // SO_*BUFFORCE ignores net.core.[rw]mem_max when we are root; otherwise fall back (capped).
  if (setsockopt(fd, SOL_SOCKET, option_force, &size, sizeof size) != 0) {
    setsockopt(fd, SOL_SOCKET, option, &size, sizeof size);
  }
}

int main(int argc, char **argv) {
  const char *bind_ip = "127.0.0.1";
  int port = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--bind") == 0 && i + 1 < argc) bind_ip = argv[++i];
    else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) port = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: reflector [--bind ip] [--port n]\n");
      return 2;
    }
  }
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) {
    perror("socket");
    return 1;
  }
  set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, SOCKET_BUFFER);
  set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, SOCKET_BUFFER);
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
  if (inet_pton(AF_INET, bind_ip, &address.sin_addr) != 1) {
    fprintf(stderr, "bad bind address %s\n", bind_ip);
    return 2;
  }
  if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0) {
    perror("bind");
    return 1;
  }
  socklen_t length = sizeof address;
  getsockname(fd, (struct sockaddr *)&address, &length);
  printf("port %d\n", ntohs(address.sin_port));
  fflush(stdout);

  struct sigaction action = {.sa_handler = on_usr1};
  sigaction(SIGUSR1, &action, NULL);

  static char buffers[BATCH][MAX_DATAGRAM];
  static struct sockaddr_in peers[BATCH];
  static struct iovec iov[BATCH];
  static struct mmsghdr messages[BATCH];
  unsigned long long received = 0, sent = 0, send_errors = 0;

  for (;;) {
    for (int i = 0; i < BATCH; i++) {
      iov[i].iov_base = buffers[i];
      iov[i].iov_len = MAX_DATAGRAM;
      memset(&messages[i].msg_hdr, 0, sizeof messages[i].msg_hdr);
      messages[i].msg_hdr.msg_name = &peers[i];
      messages[i].msg_hdr.msg_namelen = sizeof peers[i];
      messages[i].msg_hdr.msg_iov = &iov[i];
      messages[i].msg_hdr.msg_iovlen = 1;
    }
    // Blocks for the first datagram, then takes whatever else is queued (up to BATCH).
    int count = recvmmsg(fd, messages, BATCH, MSG_WAITFORONE, NULL);
    if (report_requested) {
      report_requested = 0;
      fprintf(stderr, "reflector received=%llu sent=%llu send_errors=%llu\n", received, sent, send_errors);
    }
    if (count < 0) {
      if (errno == EINTR) continue;
      perror("recvmmsg");
      return 1;
    }
    received += (unsigned long long)count;
    // Echo: same buffer, same length, back to the address it came from.
    for (int i = 0; i < count; i++) iov[i].iov_len = messages[i].msg_len;
    int offset = 0;
    while (offset < count) {
      int done = sendmmsg(fd, messages + offset, (unsigned)(count - offset), 0);
      if (done < 0) {
        if (errno == EINTR) continue;
        // ECONNREFUSED etc. from an earlier ICMP: skip the datagram that failed.
        send_errors++;
        offset++;
        continue;
      }
      sent += (unsigned long long)done;
      offset += done;
    }
  }
}
