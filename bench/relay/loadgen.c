// Load generator for the relay benchmark (docs/benchmarks.md).
//
// Opens F client sockets ("flows") on 127.0.0.1, each connect()ed to the target, sets up each flow
// for the selected mode, then runs load steps on command. A step sends `rate` datagrams per second
// in total for `duration_ms`, packet g going to flow g % F, paced by an absolute-time ticker (every
// tick sends exactly the packets that are due, with sendmmsg per flow); a receiver thread drains all
// flows with epoll + recvmmsg, checks each echo (step, sequence number: loss, duplicates) and puts
// its round-trip time (kernel receive timestamp minus send time) in a histogram.
//
// Modes:
//   udp    raw payloads to the target (the reflector): the direct path.
//   turn   per flow: TURN Allocate (no authentication), ChannelBind to --peer, then ChannelData
//          (RFC 8656 §12.4) to the TURN server; echoes come back as ChannelData.
//   relay  per flow: send the STUN Binding request given in --stun-hex (from this very socket) and
//          wait until it comes back (the reflector behind the relay echoes it), then raw payloads.
//   relay-tcp  the same over ICE-TCP: per flow one TCP connection to the relay's TCP port, every
//          packet framed with its 16-bit length (RFC 4571), echoes read back from the byte stream.
//
// Every payload is `--size` bytes (the application packet; TURN adds its 4-byte ChannelData header)
// and looks like RTP (first byte 0x80); the probe fields sit after a 12-byte RTP-like header:
//   magic u32 | step u32 | seq u32 (per step, global over flows) | flow u32 | send time u64 (ns)
//
// Protocol: after setup one JSON line {"ready":true,...}; then on stdin
//   step <id> <rate_pps> <duration_ms> <drain_ms> <tick_us>   -> one JSON line of results
//   quit
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_FLOWS 1024
#define CHUNK 64
#define MAX_DATAGRAM 2048
#define SOCKET_BUFFER (8 * 1024 * 1024)
#define PROBE_MAGIC 0x52424556u /* "VEBR" little-endian */
#define RTP_HEADER 12
#define PROBE_BYTES 24
#define CHANNEL_BASE 0x4000

enum mode { MODE_UDP, MODE_TURN, MODE_RELAY, MODE_RELAY_TCP };

struct probe {
  uint32_t magic;
  uint32_t step;
  uint32_t seq;
  uint32_t flow;
  uint64_t sent_ns;
};

// ---- options and flows ----------------------------------------------------------------------

static enum mode mode = MODE_UDP;
static struct sockaddr_in target, peer;
static int have_peer = 0;
static int flow_count = 16;
static int payload_size = 200;
static int frame_offset = 0; /* 4 in TURN mode: the ChannelData header */
// The receiver sleeps this long after a pass that found few datagrams, so that under load it wakes
// once per batch rather than once per datagram (RTTs use kernel receive timestamps: unaffected).
static long coalesce_us = 50;
static char *stun_hex = NULL;
// Relay mode: each flow's Binding request, re-sent every keepalive_ms like a browser's ICE consent
// checks (RFC 7675), so the relay's idle timeout never ends a flow between steps.
static uint8_t *stun_packets[MAX_FLOWS];
static size_t stun_lengths[MAX_FLOWS];
static uint64_t keepalive_ns = 0, last_keepalive_ns = 0;
static int fds[MAX_FLOWS];
static uint16_t local_ports[MAX_FLOWS];

// relay-tcp: each flow's unread bytes of the stream (a partial frame at most between reads).
#define STREAM_BUFFER (256 * 1024)
static uint8_t *stream_buffers[MAX_FLOWS];
static size_t stream_filled[MAX_FLOWS];

static int is_stream(void) { return mode == MODE_RELAY_TCP; }

// Writes all of `length` bytes to a TCP socket (blocking): a full send buffer stalls the sender,
// which the step reports as backlog.
static int send_all(int fd, const uint8_t *data, size_t length) {
  while (length > 0) {
    ssize_t done = send(fd, data, length, MSG_NOSIGNAL);
    if (done < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    data += done;
    length -= (size_t)done;
  }
  return 0;
}

// One packet on a flow, framed on TCP.
static ssize_t send_packet(int fd, const uint8_t *packet, size_t length, int flags) {
  if (!is_stream()) return send(fd, packet, length, flags);
  uint8_t framed[MAX_DATAGRAM + 2];
  framed[0] = (uint8_t)(length >> 8);
  framed[1] = (uint8_t)length;
  memcpy(framed + 2, packet, length);
  return send_all(fd, framed, length + 2) == 0 ? (ssize_t)length : -1;
}

// ---- shared step state (receiver thread writes under the lock, main thread reads) ---------------

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int stop_receiver = 0;
static uint32_t current_step = 0; /* 0: no step running, echoes count as stale */
static uint64_t step_total = 0;
static uint8_t *seen = NULL; /* bitmap over seq */
static uint64_t received = 0, duplicates = 0, stale = 0, foreign = 0, stun_echoes = 0, receive_errors = 0;
static uint64_t flow_received[MAX_FLOWS];

// Log-linear histogram of RTT in ns: exact below 1024, then 512 sub-buckets per power of two
// (resolution 0.2 %), up to 2^40 ns.
#define SUB_BITS 9
#define HIST_SIZE (1024 + 32 * 512)
static uint64_t hist[HIST_SIZE];
static uint64_t rtt_count = 0, rtt_max = 0;
static long double rtt_sum = 0;

static inline int hist_index(uint64_t v) {
  if (v < 1024) return (int)v;
  int msb = 63 - __builtin_clzll(v);
  int shift = msb - SUB_BITS;
  if (shift > 32) return HIST_SIZE - 1;
  int index = 1024 + (shift - 1) * 512 + (int)((v >> shift) - 512);
  return index < HIST_SIZE ? index : HIST_SIZE - 1;
}

static inline uint64_t hist_value(int index) {
  if (index < 1024) return (uint64_t)index;
  int shift = (index - 1024) / 512 + 1;
  uint64_t base = (uint64_t)((index - 1024) % 512 + 512) << shift;
  return base + ((1ull << shift) >> 1); /* middle of the bucket */
}

static uint64_t hist_percentile(double p) {
  if (rtt_count == 0) return 0;
  uint64_t rank = (uint64_t)(p * (double)rtt_count);
  if (rank < 1) rank = 1;
  if (rank > rtt_count) rank = rtt_count;
  uint64_t cumulative = 0;
  for (int i = 0; i < HIST_SIZE; i++) {
    cumulative += hist[i];
    if (cumulative >= rank) {
      uint64_t value = hist_value(i);
      return value > rtt_max ? rtt_max : value;
    }
  }
  return rtt_max;
}

static inline uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

// Probe send times use the clock of the kernel's receive timestamps (SO_TIMESTAMPNS: CLOCK_REALTIME),
// so an RTT is "packet handed to sendmmsg" → "echo queued on our socket", whenever we read it.
static inline uint64_t wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
  fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void fail(const char *message) {
  fprintf(stderr, "loadgen: %s\n", message);
  exit(1);
}

static int parse_address(const char *text, struct sockaddr_in *out) {
  char host[64];
  const char *colon = strrchr(text, ':');
  if (colon == NULL || (size_t)(colon - text) >= sizeof host) return -1;
  memcpy(host, text, (size_t)(colon - text));
  host[colon - text] = 0;
  memset(out, 0, sizeof *out);
  out->sin_family = AF_INET;
  out->sin_port = htons((uint16_t)atoi(colon + 1));
  return inet_pton(AF_INET, host, &out->sin_addr) == 1 ? 0 : -1;
}

static void set_buffer(int fd, int option_force, int option, int size) {
  if (setsockopt(fd, SOL_SOCKET, option_force, &size, sizeof size) != 0) {
    setsockopt(fd, SOL_SOCKET, option, &size, sizeof size);
  }
}

// ---- setup: STUN/TURN transactions --------------------------------------------------------------

static void put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static void random_bytes(uint8_t *out, size_t n) {
  static uint64_t state = 0;
  if (state == 0) state = now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < n; i++) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    out[i] = (uint8_t)state;
  }
}

// Sends `request` until a datagram for which `accept` returns nonzero arrives (or gives up).
static int transact(int fd, const uint8_t *request, size_t length, uint8_t *response, size_t capacity,
                    int (*accept)(const uint8_t *, size_t, const uint8_t *, size_t), int tries,
                    int timeout_ms) {
  for (int attempt = 0; attempt < tries; attempt++) {
    if (send_packet(fd, request, length, 0) < 0 && errno != ECONNREFUSED) die("send (setup)");
    uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
    for (;;) {
      uint64_t now = now_ns();
      if (now >= deadline) break;
      struct pollfd pfd = {.fd = fd, .events = POLLIN};
      int ready = poll(&pfd, 1, (int)((deadline - now) / 1000000ull) + 1);
      if (ready <= 0) continue;
      ssize_t got;
      if (is_stream()) {
        uint8_t prefix[2];
        if (recv(fd, prefix, 2, MSG_WAITALL) != 2) die("recv (setup)");
        size_t framed = (size_t)(prefix[0] << 8 | prefix[1]);
        if (framed > capacity) fail("setup answer too long");
        got = recv(fd, response, framed, MSG_WAITALL);
        if (got != (ssize_t)framed) die("recv (setup)");
      } else {
        got = recv(fd, response, capacity, MSG_DONTWAIT);
      }
      if (got < 0) continue; /* ECONNREFUSED: nobody listening (yet); retry */
      if (accept(request, length, response, (size_t)got)) return (int)got;
    }
  }
  return -1;
}

static int accept_stun_response(const uint8_t *request, size_t request_length, const uint8_t *response,
                                size_t length) {
  (void)request_length;
  return length >= 20 && response[0] < 4 && memcmp(response + 8, request + 8, 12) == 0;
}

static int accept_echo(const uint8_t *request, size_t request_length, const uint8_t *response,
                       size_t length) {
  return length == request_length && memcmp(response, request, length) == 0;
}

static size_t stun_header(uint8_t *out, uint16_t type) {
  put16(out, type);
  put16(out + 2, 0);
  out[4] = 0x21, out[5] = 0x12, out[6] = 0xa4, out[7] = 0x42;
  random_bytes(out + 8, 12);
  return 20;
}

static size_t stun_attr(uint8_t *out, size_t offset, uint16_t type, const uint8_t *value, uint16_t length) {
  put16(out + offset, type);
  put16(out + offset + 2, length);
  memcpy(out + offset + 4, value, length);
  size_t padded = (size_t)((length + 3) & ~3);
  memset(out + offset + 4 + length, 0, padded - length);
  offset += 4 + padded;
  put16(out + 2, (uint16_t)(offset - 20));
  return offset;
}

static void check_stun_success(const uint8_t *response, int length, uint16_t expected, const char *what,
                               int flow) {
  if (length < 0) {
    fprintf(stderr, "loadgen: flow %d: no answer to %s\n", flow, what);
    exit(1);
  }
  uint16_t type = get16(response);
  if (type == expected) return;
  int code = 0;
  const char *reason = "";
  int reason_length = 0;
  for (int offset = 20; offset + 4 <= length;) {
    uint16_t attr = get16(response + offset), attr_length = get16(response + offset + 2);
    if (attr == 0x0009 && attr_length >= 4 && offset + 4 + attr_length <= length) {
      code = (response[offset + 6] & 7) * 100 + response[offset + 7];
      reason = (const char *)response + offset + 8;
      reason_length = attr_length - 4;
    }
    offset += 4 + ((attr_length + 3) & ~3);
  }
  fprintf(stderr, "loadgen: flow %d: %s failed: type 0x%04x error %d %.*s\n", flow, what, type, code,
          reason_length, reason);
  exit(1);
}

static void setup_turn(int flow) {
  uint8_t request[512], response[2048];
  // Allocate (RFC 8656 §7.1) without credentials: the server runs with no-auth.
  size_t length = stun_header(request, 0x0003);
  uint8_t transport[4] = {17, 0, 0, 0};
  length = stun_attr(request, length, 0x0019, transport, 4); /* REQUESTED-TRANSPORT: UDP */
  uint8_t lifetime[4] = {0, 0, 0x0e, 0x10};                  /* 3600 s */
  length = stun_attr(request, length, 0x000d, lifetime, 4);
  int got = transact(fds[flow], request, length, response, sizeof response, accept_stun_response, 6, 500);
  check_stun_success(response, got, 0x0103, "Allocate", flow);
  // ChannelBind (RFC 8656 §11): channel 0x4000 + flow to the peer; also installs the permission.
  length = stun_header(request, 0x0009);
  uint8_t channel[4] = {0, 0, 0, 0};
  put16(channel, (uint16_t)(CHANNEL_BASE + flow));
  length = stun_attr(request, length, 0x000c, channel, 4);
  uint8_t xor_peer[8] = {0, 1};
  uint16_t port = ntohs(peer.sin_port) ^ 0x2112;
  put16(xor_peer + 2, port);
  uint32_t address = ntohl(peer.sin_addr.s_addr) ^ 0x2112a442u;
  xor_peer[4] = (uint8_t)(address >> 24), xor_peer[5] = (uint8_t)(address >> 16);
  xor_peer[6] = (uint8_t)(address >> 8), xor_peer[7] = (uint8_t)address;
  length = stun_attr(request, length, 0x0012, xor_peer, 8);
  got = transact(fds[flow], request, length, response, sizeof response, accept_stun_response, 6, 500);
  check_stun_success(response, got, 0x0109, "ChannelBind", flow);
}

// Deletes the allocation (Refresh with LIFETIME 0, RFC 8656 §7.2) so a later run that gets the
// same ephemeral port does not collide with it. Best effort: the receiver thread eats the answer.
static void release_turn(int flow) {
  uint8_t request[64];
  size_t length = stun_header(request, 0x0004);
  uint8_t lifetime[4] = {0, 0, 0, 0};
  length = stun_attr(request, length, 0x000d, lifetime, 4);
  for (int i = 0; i < 2; i++) send(fds[flow], request, length, 0);
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The flow-th comma-separated hex packet of --stun-hex (cycling when there are fewer than flows).
static size_t stun_packet_for(int flow, uint8_t *out, size_t capacity) {
  int packets = 1;
  for (const char *p = stun_hex; *p; p++) packets += *p == ',';
  int wanted = flow % packets;
  const char *p = stun_hex;
  for (int i = 0; i < wanted; i++) p = strchr(p, ',') + 1;
  size_t length = 0;
  while (*p && *p != ',') {
    int hi = hex_value(p[0]), lo = p[1] ? hex_value(p[1]) : -1;
    if (hi < 0 || lo < 0 || length >= capacity) fail("bad --stun-hex");
    out[length++] = (uint8_t)(hi << 4 | lo);
    p += 2;
  }
  return length;
}

static void setup_relay(int flow) {
  uint8_t request[1024], response[2048];
  size_t length = stun_packet_for(flow, request, sizeof request);
  if (length < 20) fail("--stun-hex packet shorter than a STUN header");
  int got = transact(fds[flow], request, length, response, sizeof response, accept_echo, 40, 250);
  if (got < 0) {
    fprintf(stderr, "loadgen: flow %d: the Binding request never came back through the relay\n", flow);
    exit(1);
  }
  stun_packets[flow] = malloc(length);
  if (stun_packets[flow] == NULL) fail("out of memory");
  memcpy(stun_packets[flow], request, length);
  stun_lengths[flow] = length;
}

static void maybe_keepalive(uint64_t now) {
  if (keepalive_ns == 0 || now - last_keepalive_ns < keepalive_ns) return;
  last_keepalive_ns = now;
  for (int f = 0; f < flow_count; f++) {
    if (stun_packets[f] != NULL) send_packet(fds[f], stun_packets[f], stun_lengths[f], MSG_DONTWAIT);
  }
}

// ---- receiver thread ----------------------------------------------------------------------------

// Accounts one echoed packet that arrived at `arrived` (ns, CLOCK_REALTIME). Called under the lock.
static void count_packet(const uint8_t *frame, size_t length, uint64_t arrived) {
  if ((mode == MODE_RELAY || mode == MODE_RELAY_TCP) && length >= 20 && frame[0] < 4) {
    stun_echoes++; /* a keepalive Binding request coming back */
    return;
  }
  if (mode == MODE_TURN && (length < 4 || (frame[0] & 0xc0) != 0x40)) {
    foreign++;
    return;
  }
  if (length < (size_t)(frame_offset + RTP_HEADER + PROBE_BYTES)) {
    foreign++;
    return;
  }
  struct probe probe;
  memcpy(&probe, frame + frame_offset + RTP_HEADER, sizeof probe);
  if (probe.magic != PROBE_MAGIC) {
    foreign++;
    return;
  }
  if (probe.step != current_step || current_step == 0 || probe.seq >= step_total) {
    stale++;
    return;
  }
  uint8_t bit = (uint8_t)(1u << (probe.seq & 7));
  if (seen[probe.seq >> 3] & bit) {
    duplicates++;
    return;
  }
  seen[probe.seq >> 3] |= bit;
  received++;
  if (probe.flow < (uint32_t)flow_count) flow_received[probe.flow]++;
  uint64_t rtt = arrived > probe.sent_ns ? arrived - probe.sent_ns : 0;
  hist[hist_index(rtt)]++;
  rtt_count++;
  rtt_sum += (long double)rtt;
  if (rtt > rtt_max) rtt_max = rtt;
}

// relay-tcp: reads what the flow's stream has, counts every whole frame. Returns frames read.
static int read_stream(int flow) {
  int frames = 0;
  for (;;) {
    uint8_t *buffer = stream_buffers[flow];
    // The kernel's receive timestamp of the newest segment read (SO_TIMESTAMPNS works on TCP too),
    // so stream RTTs are measured like datagram ones, not at the receiver thread's wake-up.
    struct iovec iov = {.iov_base = buffer + stream_filled[flow], .iov_len = STREAM_BUFFER - stream_filled[flow]};
    union {
      char bytes[CMSG_SPACE(sizeof(struct timespec))];
      struct cmsghdr align;
    } control;
    struct msghdr message = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.bytes,
                             .msg_controllen = sizeof control.bytes};
    ssize_t got = recvmsg(fds[flow], &message, MSG_DONTWAIT);
    if (got <= 0) {
      if (got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        pthread_mutex_lock(&lock);
        receive_errors++;
        pthread_mutex_unlock(&lock);
      }
      return frames;
    }
    uint64_t arrived = wall_ns();
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&message);
    if (cmsg != NULL && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_TIMESTAMPNS) {
      struct timespec ts;
      memcpy(&ts, CMSG_DATA(cmsg), sizeof ts);
      arrived = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    }
    stream_filled[flow] += (size_t)got;
    size_t offset = 0;
    pthread_mutex_lock(&lock);
    while (stream_filled[flow] - offset >= 2) {
      size_t length = (size_t)(buffer[offset] << 8 | buffer[offset + 1]);
      if (stream_filled[flow] - offset < 2 + length) break;
      count_packet(buffer + offset + 2, length, arrived);
      offset += 2 + length;
      frames++;
    }
    pthread_mutex_unlock(&lock);
    memmove(buffer, buffer + offset, stream_filled[flow] - offset);
    stream_filled[flow] -= offset;
  }
}

static void *receiver_main(void *unused) {
  (void)unused;
  int epoll_fd = epoll_create1(0);
  if (epoll_fd < 0) die("epoll_create1");
  for (int i = 0; i < flow_count; i++) {
    struct epoll_event event = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fds[i], &event) != 0) die("epoll_ctl");
  }
  static uint8_t buffers[CHUNK][MAX_DATAGRAM];
  static struct iovec iov[CHUNK];
  static struct mmsghdr messages[CHUNK];
  static union {
    char bytes[CMSG_SPACE(sizeof(struct timespec))];
    struct cmsghdr align;
  } controls[CHUNK];
  for (int i = 0; i < CHUNK; i++) {
    iov[i].iov_base = buffers[i];
    iov[i].iov_len = MAX_DATAGRAM;
    messages[i].msg_hdr.msg_iov = &iov[i];
    messages[i].msg_hdr.msg_iovlen = 1;
    messages[i].msg_hdr.msg_control = controls[i].bytes;
  }
  struct epoll_event events[64];
  while (!atomic_load_explicit(&stop_receiver, memory_order_relaxed)) {
    int ready = epoll_wait(epoll_fd, events, 64, 100);
    if (ready < 0 && errno != EINTR) die("epoll_wait");
    int pass_total = 0;
    for (int e = 0; e < ready; e++) {
      int fd = fds[events[e].data.u32];
      if (is_stream()) {
        pass_total += read_stream((int)events[e].data.u32);
        continue;
      }
      for (;;) {
        for (int i = 0; i < CHUNK; i++) messages[i].msg_hdr.msg_controllen = sizeof controls[i].bytes;
        int count = recvmmsg(fd, messages, CHUNK, MSG_DONTWAIT, NULL);
        if (count <= 0) {
          if (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            pthread_mutex_lock(&lock);
            receive_errors++;
            pthread_mutex_unlock(&lock);
          }
          break;
        }
        pass_total += count;
        uint64_t now = wall_ns();
        pthread_mutex_lock(&lock);
        for (int i = 0; i < count; i++) {
          size_t length = messages[i].msg_len;
          uint64_t arrived = now;
          struct cmsghdr *cmsg = CMSG_FIRSTHDR(&messages[i].msg_hdr);
          if (cmsg != NULL && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(cmsg), sizeof ts);
            arrived = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
          }
          count_packet(buffers[i], length, arrived);
        }
        pthread_mutex_unlock(&lock);
        if (count < CHUNK) break;
      }
    }
    if (ready > 0 && pass_total < CHUNK / 2 && coalesce_us > 0) {
      struct timespec pause = {.tv_sec = 0, .tv_nsec = coalesce_us * 1000};
      nanosleep(&pause, NULL);
    }
  }
  return NULL;
}

// ---- sender (main thread) -----------------------------------------------------------------------

static uint8_t (*send_buffers)[CHUNK][MAX_DATAGRAM]; /* per flow */

static void fill_template(void) {
  send_buffers = calloc((size_t)(unsigned)flow_count, sizeof *send_buffers);
  if (send_buffers == NULL) fail("out of memory");
  for (int f = 0; f < flow_count; f++) {
    for (int k = 0; k < CHUNK; k++) {
      uint8_t *frame = send_buffers[f][k];
      if (mode == MODE_TURN) {
        put16(frame, (uint16_t)(CHANNEL_BASE + f));
        put16(frame + 2, (uint16_t)payload_size);
      }
      uint8_t *rtp = frame + frame_offset;
      rtp[0] = 0x80; /* RTP version 2: first byte in 128..191 (RFC 7983) */
      rtp[1] = 111;  /* dynamic payload type, as Opus usually is */
      uint32_t ssrc = htonl(0x5ee00000u + (uint32_t)f);
      memcpy(rtp + 8, &ssrc, 4);
      for (int i = RTP_HEADER + PROBE_BYTES; i < payload_size; i++) rtp[i] = (uint8_t)(i * 7 + f);
    }
  }
}

struct step_result {
  uint64_t sent, send_errors, max_backlog;
  uint64_t send_elapsed_ns;
};

static void send_chunk(int flow, int count, uint32_t step, uint64_t first_seq, struct step_result *result) {
  struct mmsghdr messages[CHUNK];
  struct iovec iov[CHUNK];
  uint64_t stamp = wall_ns();
  for (int k = 0; k < count; k++) {
    uint8_t *frame = send_buffers[flow][k];
    uint8_t *rtp = frame + frame_offset;
    uint64_t seq = first_seq + (uint64_t)k * (uint64_t)flow_count;
    put16(rtp + 2, (uint16_t)seq);
    struct probe probe = {PROBE_MAGIC, step, (uint32_t)seq, (uint32_t)flow, stamp};
    memcpy(rtp + RTP_HEADER, &probe, sizeof probe);
    iov[k].iov_base = frame;
    iov[k].iov_len = (size_t)(frame_offset + payload_size);
    memset(&messages[k].msg_hdr, 0, sizeof messages[k].msg_hdr);
    messages[k].msg_hdr.msg_iov = &iov[k];
    messages[k].msg_hdr.msg_iovlen = 1;
  }
  if (is_stream()) {
    // One write of `count` framed packets: what a TCP sender does with a burst.
    static uint8_t batch[CHUNK * (MAX_DATAGRAM + 2)];
    size_t filled = 0;
    for (int k = 0; k < count; k++) {
      size_t length = iov[k].iov_len;
      batch[filled] = (uint8_t)(length >> 8);
      batch[filled + 1] = (uint8_t)length;
      memcpy(batch + filled + 2, iov[k].iov_base, length);
      filled += 2 + length;
    }
    if (send_all(fds[flow], batch, filled) == 0) result->sent += (uint64_t)count;
    else result->send_errors += (uint64_t)count;
    return;
  }
  int offset = 0;
  while (offset < count) {
    int done = sendmmsg(fds[flow], messages + offset, (unsigned)(count - offset), 0);
    if (done < 0) {
      if (errno == EINTR) continue;
      result->send_errors++; /* e.g. ECONNREFUSED after an ICMP from a dead target: skip one */
      offset++;
      continue;
    }
    result->sent += (uint64_t)done;
    offset += done;
  }
}

static void run_step(uint32_t id, uint64_t rate, uint64_t duration_ms, uint64_t drain_ms, uint64_t tick_us) {
  uint64_t total = rate * duration_ms / 1000;
  if (total == 0 || id == 0) fail("bad step");
  size_t bitmap_bytes = (size_t)(total / 8 + 1);
  uint8_t *bitmap = calloc(bitmap_bytes, 1);
  if (bitmap == NULL) fail("out of memory");

  pthread_mutex_lock(&lock);
  free(seen);
  seen = bitmap;
  step_total = total;
  current_step = id;
  received = duplicates = stale = foreign = stun_echoes = receive_errors = 0;
  memset(flow_received, 0, sizeof flow_received);
  memset(hist, 0, sizeof hist);
  rtt_count = rtt_max = 0;
  rtt_sum = 0;
  pthread_mutex_unlock(&lock);

  struct step_result result = {0};
  uint64_t tick_ns = tick_us * 1000;
  uint64_t start = now_ns() + 1000000; /* 1 ms from now */
  uint64_t next_ns = start, planned = 0, last_send_end = start;
  while (planned < total) {
    struct timespec wake = {.tv_sec = (time_t)(next_ns / 1000000000ull), .tv_nsec = (long)(next_ns % 1000000000ull)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &wake, NULL) == EINTR) {
    }
    uint64_t now = now_ns();
    maybe_keepalive(now);
    uint64_t due = (uint64_t)((unsigned __int128)(now - start) * rate / 1000000000ull);
    if (due > total) due = total;
    if (due > planned) {
      uint64_t backlog = due - planned;
      if (backlog > result.max_backlog) result.max_backlog = backlog;
      // Packets planned..due-1; packet g goes to flow g % F with seq g.
      for (int f = 0; f < flow_count; f++) {
        uint64_t first = planned + (uint64_t)((f - (int)(planned % (uint64_t)flow_count) + flow_count) % flow_count);
        if (first >= due) continue;
        uint64_t count = (due - 1 - first) / (uint64_t)flow_count + 1;
        while (count > 0) {
          int chunk = count > CHUNK ? CHUNK : (int)count;
          send_chunk(f, chunk, id, first, &result);
          first += (uint64_t)chunk * (uint64_t)flow_count;
          count -= (uint64_t)chunk;
        }
      }
      planned = due;
      last_send_end = now_ns();
    }
    next_ns += tick_ns;
    if (next_ns + tick_ns < now) next_ns = now; /* fell behind: do not sleep, catch up */
  }
  result.send_elapsed_ns = last_send_end - start;

  struct timespec drain = {.tv_sec = (time_t)(drain_ms / 1000), .tv_nsec = (long)(drain_ms % 1000) * 1000000};
  nanosleep(&drain, NULL);

  pthread_mutex_lock(&lock);
  current_step = 0;
  uint64_t flow_min = UINT64_MAX, flow_max = 0;
  for (int f = 0; f < flow_count; f++) {
    if (flow_received[f] < flow_min) flow_min = flow_received[f];
    if (flow_received[f] > flow_max) flow_max = flow_received[f];
  }
  double mean = rtt_count ? (double)(rtt_sum / (long double)rtt_count) : 0;
  printf("{\"step\":%u,\"rate\":%" PRIu64 ",\"duration_ms\":%" PRIu64 ",\"planned\":%" PRIu64 ",\"sent\":%" PRIu64
         ",\"send_errors\":%" PRIu64 ",\"received\":%" PRIu64 ",\"duplicates\":%" PRIu64 ",\"stale\":%" PRIu64
         ",\"foreign\":%" PRIu64 ",\"stun_echoes\":%" PRIu64 ",\"receive_errors\":%" PRIu64 ",\"send_elapsed_ms\":%.3f,\"max_backlog\":%" PRIu64
         ",\"flow_received_min\":%" PRIu64 ",\"flow_received_max\":%" PRIu64
         ",\"rtt_ns\":{\"count\":%" PRIu64 ",\"mean\":%.0f,\"p50\":%" PRIu64 ",\"p90\":%" PRIu64 ",\"p99\":%" PRIu64
         ",\"p999\":%" PRIu64 ",\"max\":%" PRIu64 "}}\n",
         id, rate, duration_ms, total, result.sent, result.send_errors, received, duplicates, stale, foreign,
         stun_echoes, receive_errors, (double)result.send_elapsed_ns / 1e6, result.max_backlog, flow_min, flow_max, rtt_count,
         mean, hist_percentile(0.50), hist_percentile(0.90), hist_percentile(0.99), hist_percentile(0.999),
         rtt_max);
  fflush(stdout);
  pthread_mutex_unlock(&lock);
}

// ---- main ---------------------------------------------------------------------------------------

// Reads one command line from stdin, sending keepalives while it waits. False at end of input.
static int read_command(char *line, size_t capacity) {
  static char buffer[4096];
  static size_t filled = 0;
  for (;;) {
    char *newline = memchr(buffer, '\n', filled);
    if (newline != NULL) {
      size_t length = (size_t)(newline - buffer) + 1;
      size_t copy = length < capacity ? length : capacity - 1;
      memcpy(line, buffer, copy);
      line[copy] = 0;
      memmove(buffer, buffer + length, filled - length);
      filled -= length;
      return 1;
    }
    if (filled == sizeof buffer) filled = 0; /* an absurdly long line: drop it */
    struct pollfd pfd = {.fd = 0, .events = POLLIN};
    int ready = poll(&pfd, 1, 500);
    maybe_keepalive(now_ns());
    if (ready <= 0) continue;
    ssize_t got = read(0, buffer + filled, sizeof buffer - filled);
    if (got <= 0) return 0;
    filled += (size_t)got;
  }
}

static void usage(void) {
  fprintf(stderr,
          "usage: loadgen --mode udp|turn|relay|relay-tcp --target ip:port [--peer ip:port] [--flows n] [--size bytes]\n"
          "               [--stun-hex hex[,hex...]] [--keepalive-ms ms (relay mode, default 5000)]\n"
          "               [--coalesce-us us (receiver batching pause, default 50; 0 = wake per datagram)]\n");
  exit(2);
}

int main(int argc, char **argv) {
  int have_target = 0, keepalive_set = 0;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    const char *value = i + 1 < argc ? argv[i + 1] : NULL;
    if (value == NULL) usage();
    if (strcmp(arg, "--mode") == 0) {
      if (strcmp(value, "udp") == 0) mode = MODE_UDP;
      else if (strcmp(value, "turn") == 0) mode = MODE_TURN;
      else if (strcmp(value, "relay") == 0) mode = MODE_RELAY;
      else if (strcmp(value, "relay-tcp") == 0) mode = MODE_RELAY_TCP;
      else usage();
    } else if (strcmp(arg, "--target") == 0) {
      if (parse_address(value, &target) != 0) usage();
      have_target = 1;
    } else if (strcmp(arg, "--peer") == 0) {
      if (parse_address(value, &peer) != 0) usage();
      have_peer = 1;
    } else if (strcmp(arg, "--flows") == 0) {
      flow_count = atoi(value);
    } else if (strcmp(arg, "--size") == 0) {
      payload_size = atoi(value);
    } else if (strcmp(arg, "--coalesce-us") == 0) {
      coalesce_us = atol(value);
    } else if (strcmp(arg, "--keepalive-ms") == 0) {
      keepalive_ns = (uint64_t)atoll(value) * 1000000ull;
      keepalive_set = 1;
    } else if (strcmp(arg, "--stun-hex") == 0) {
      stun_hex = strdup(value);
    } else {
      usage();
    }
    i++;
  }
  if (!have_target || flow_count < 1 || flow_count > MAX_FLOWS) usage();
  if (payload_size < RTP_HEADER + PROBE_BYTES || payload_size > MAX_DATAGRAM - 4) fail("--size out of range");
  if (mode == MODE_TURN && !have_peer) fail("--mode turn needs --peer");
  int relaying = mode == MODE_RELAY || mode == MODE_RELAY_TCP;
  if (relaying && stun_hex == NULL) fail("--mode relay needs --stun-hex");
  frame_offset = mode == MODE_TURN ? 4 : 0;
  if (relaying && !keepalive_set) keepalive_ns = 5000ull * 1000000ull;
  if (!relaying) keepalive_ns = 0;
  prctl(PR_SET_TIMERSLACK, 1UL); /* wake up on time: the pacing ticks are tens of microseconds */

  for (int i = 0; i < flow_count; i++) {
    int fd = socket(AF_INET, is_stream() ? SOCK_STREAM : SOCK_DGRAM, 0);
    if (fd < 0) die("socket");
    if (is_stream()) {
      int on = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
      stream_buffers[i] = malloc(STREAM_BUFFER);
      if (stream_buffers[i] == NULL) fail("out of memory");
    }
    set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, SOCKET_BUFFER);
    set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, SOCKET_BUFFER);
    struct sockaddr_in local = {.sin_family = AF_INET};
    local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&local, sizeof local) != 0) die("bind");
    if (connect(fd, (struct sockaddr *)&target, sizeof target) != 0) die("connect");
    socklen_t length = sizeof local;
    getsockname(fd, (struct sockaddr *)&local, &length);
    local_ports[i] = ntohs(local.sin_port);
    fds[i] = fd;
  }
  for (int i = 0; i < flow_count; i++) {
    if (mode == MODE_TURN) setup_turn(i);
    else if (relaying) setup_relay(i);
  }
  fill_template();
  for (int i = 0; i < flow_count; i++) {
    int on = 1;
    if (setsockopt(fds[i], SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) != 0) die("SO_TIMESTAMPNS");
  }

  pthread_t receiver;
  if (pthread_create(&receiver, NULL, receiver_main, NULL) != 0) fail("pthread_create");

  const char *mode_name = mode == MODE_TURN        ? "turn"
                          : mode == MODE_RELAY     ? "relay"
                          : mode == MODE_RELAY_TCP ? "relay-tcp"
                                                   : "udp";
  printf("{\"ready\":true,\"mode\":\"%s\",\"flows\":%d,\"size\":%d,\"ports\":[", mode_name, flow_count,
         payload_size);
  for (int i = 0; i < flow_count; i++) printf("%s%u", i ? "," : "", local_ports[i]);
  printf("]}\n");
  fflush(stdout);

  last_keepalive_ns = now_ns();
  char line[256];
  while (read_command(line, sizeof line)) {
    unsigned id;
    uint64_t rate, duration_ms, drain_ms, tick_us;
    if (strncmp(line, "quit", 4) == 0) break;
    if (sscanf(line, "step %u %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64, &id, &rate, &duration_ms, &drain_ms,
               &tick_us) == 5) {
      run_step(id, rate, duration_ms, drain_ms, tick_us ? tick_us : 100);
    } else {
      fprintf(stderr, "loadgen: unknown command: %s", line);
    }
  }
  if (mode == MODE_TURN) {
    for (int i = 0; i < flow_count; i++) release_turn(i);
    usleep(50000);
  }
  atomic_store(&stop_receiver, 1);
  pthread_join(receiver, NULL);
  return 0;
}
