/*
 * flood: a bounded-time sender for attack tests. It sends as fast as it can, for at most 30 s, to
 * the one destination it is given, the ways an untrusted pod with CAP_NET_RAW can:
 *
 *   flood --seconds S udp --to ADDR --port P [--priority N] [--size BYTES]
 *       UDP datagrams (IPv4 or IPv6 by the address), SO_PRIORITY optional.
 *   flood --seconds S packet --dev IF --dst-mac MAC [--bypass] [--priority N] [--size FRAME]
 *         [--src-mac MAC] (--dst-ip ADDR [--src-ip ADDR] [--port P] | --ethertype 0x88b5)
 *       AF_PACKET frames built here: UDP in IPv4/IPv6 with any source MAC and address, or a
 *       non-IP ethertype; PACKET_QDISC_BYPASS (SOL_PACKET 263, option 20) skips the device's qdisc.
 *
 * ENOBUFS and EAGAIN (a full queue) are counted and the send is retried; any other error ends the
 * run with exit code 2. One JSON line on stdout says what was sent.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef PACKET_QDISC_BYPASS
#define PACKET_QDISC_BYPASS 20
#endif

#define MAX_SECONDS 30.0
#define MAX_FRAME 9000

static void usage(const char *why) {
	fprintf(stderr, "flood: %s\n"
		"usage: flood --seconds S udp --to ADDR --port P [--priority N] [--size BYTES]\n"
		"       flood --seconds S packet --dev IF --dst-mac MAC [--bypass] [--priority N] [--size FRAME]\n"
		"             [--src-mac MAC] (--dst-ip ADDR [--src-ip ADDR] [--port P] | --ethertype TYPE)\n", why);
	exit(64);
}

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned long number(const char *text, unsigned long max, const char *what) {
	char *end;
	errno = 0;
	unsigned long value = strtoul(text, &end, 0);
	if (errno || *end || end == text || value > max) {
		fprintf(stderr, "flood: bad %s: %s\n", what, text);
		exit(64);
	}
	return value;
}

static void mac(const char *text, uint8_t out[6]) {
	if (sscanf(text, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &out[0], &out[1], &out[2], &out[3], &out[4], &out[5]) != 6) {
		fprintf(stderr, "flood: bad MAC: %s\n", text);
		exit(64);
	}
}

/* An IPv4 or IPv6 address; returns its family. */
static int address(const char *text, struct in6_addr *v6, struct in_addr *v4) {
	if (inet_pton(AF_INET, text, v4) == 1) return AF_INET;
	if (inet_pton(AF_INET6, text, v6) == 1) return AF_INET6;
	fprintf(stderr, "flood: bad address: %s\n", text);
	exit(64);
}

static uint32_t sum16(const void *data, size_t length, uint32_t sum) {
	const uint8_t *bytes = data;
	for (size_t i = 0; i + 1 < length; i += 2) sum += (bytes[i] << 8) | bytes[i + 1];
	if (length & 1) sum += bytes[length - 1] << 8;
	return sum;
}

static uint16_t fold(uint32_t sum) {
	while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

struct counts {
	unsigned long packets, bytes, full, refused;
};

/* Sends `frame` until the deadline; a full queue (ENOBUFS, EAGAIN) or an ICMP error echoed on the
 * socket (ECONNREFUSED) is counted and retried. */
static int send_until(int fd, const uint8_t *frame, size_t length, const struct sockaddr *to, socklen_t to_length,
		      double deadline, struct counts *counts) {
	for (unsigned long n = 0;; n++) {
		if ((n & 63) == 0 && now() >= deadline) return 0;
		ssize_t sent = sendto(fd, frame, length, 0, to, to_length);
		if (sent >= 0) {
			counts->packets++;
			counts->bytes += (unsigned long)sent;
		} else if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR) {
			counts->full++;
		} else if (errno == ECONNREFUSED) {
			counts->refused++;
		} else {
			fprintf(stderr, "flood: send: %s\n", strerror(errno));
			return 2;
		}
	}
}

int main(int argc, char **argv) {
	double seconds = 0;
	int i = 1;
	if (i + 1 < argc && !strcmp(argv[i], "--seconds")) {
		seconds = strtod(argv[i + 1], NULL);
		i += 2;
	}
	if (!(seconds > 0 && seconds <= MAX_SECONDS)) usage("--seconds S first, 0 < S <= 30");
	if (i >= argc) usage("no mode");
	const char *mode = argv[i++];
	int is_udp = !strcmp(mode, "udp"), is_packet = !strcmp(mode, "packet");
	if (!is_udp && !is_packet) usage("mode is udp or packet");

	const char *to = NULL, *dev = NULL, *dst_mac = NULL, *src_mac = NULL, *dst_ip = NULL, *src_ip = NULL;
	unsigned long port = 9, priority = 0, size = 0, ethertype = 0;
	int bypass = 0, has_priority = 0;
	for (; i < argc; i++) {
		const char *arg = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(arg, "--bypass")) { bypass = 1; continue; }
		if (!value) usage("an option lacks its value");
		i++;
		if (!strcmp(arg, "--to")) to = value;
		else if (!strcmp(arg, "--port")) port = number(value, 65535, "port");
		else if (!strcmp(arg, "--priority")) { priority = number(value, UINT32_MAX, "priority"); has_priority = 1; }
		else if (!strcmp(arg, "--size")) size = number(value, MAX_FRAME, "size");
		else if (!strcmp(arg, "--dev")) dev = value;
		else if (!strcmp(arg, "--dst-mac")) dst_mac = value;
		else if (!strcmp(arg, "--src-mac")) src_mac = value;
		else if (!strcmp(arg, "--dst-ip")) dst_ip = value;
		else if (!strcmp(arg, "--src-ip")) src_ip = value;
		else if (!strcmp(arg, "--ethertype")) ethertype = number(value, 0xffff, "ethertype");
		else usage("unknown option");
	}

	static uint8_t frame[MAX_FRAME];
	struct counts counts = {0};
	int fd, status;
	double start = now(), deadline = start + seconds;
	/* A hard stop even if a send blocks. */
	alarm((unsigned)seconds + 5);

	if (is_udp) {
		if (!to) usage("udp needs --to");
		struct sockaddr_storage dest = {0};
		struct in6_addr v6;
		struct in_addr v4;
		int family = address(to, &v6, &v4);
		socklen_t dest_length;
		if (family == AF_INET) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&dest;
			sin->sin_family = AF_INET, sin->sin_port = htons(port), sin->sin_addr = v4;
			dest_length = sizeof *sin;
		} else {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&dest;
			sin6->sin6_family = AF_INET6, sin6->sin6_port = htons(port), sin6->sin6_addr = v6;
			dest_length = sizeof *sin6;
		}
		if (!size) size = 1472;
		fd = socket(family, SOCK_DGRAM, 0);
		if (fd < 0) { perror("flood: socket"); return 2; }
		if (has_priority && setsockopt(fd, SOL_SOCKET, SO_PRIORITY, &(int){(int)priority}, sizeof(int))) {
			perror("flood: SO_PRIORITY"); return 2;
		}
		status = send_until(fd, frame, size, (struct sockaddr *)&dest, dest_length, deadline, &counts);
	} else {
		if (!dev || !dst_mac) usage("packet needs --dev and --dst-mac");
		if (!dst_ip == !ethertype) usage("packet needs one of --dst-ip and --ethertype");
		fd = socket(AF_PACKET, SOCK_RAW, 0); /* protocol 0: this socket receives nothing */
		if (fd < 0) { perror("flood: socket(AF_PACKET)"); return 2; }
		struct ifreq ifr = {0};
		if (strlen(dev) >= IFNAMSIZ) usage("interface name too long");
		strcpy(ifr.ifr_name, dev);
		if (ioctl(fd, SIOCGIFINDEX, &ifr)) { perror("flood: SIOCGIFINDEX"); return 2; }
		int ifindex = ifr.ifr_ifindex;
		uint8_t source[6];
		if (src_mac) mac(src_mac, source);
		else {
			if (ioctl(fd, SIOCGIFHWADDR, &ifr)) { perror("flood: SIOCGIFHWADDR"); return 2; }
			memcpy(source, ifr.ifr_hwaddr.sa_data, 6);
		}
		if (bypass && setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &(int){1}, sizeof(int))) {
			perror("flood: PACKET_QDISC_BYPASS"); return 2;
		}
		if (has_priority && setsockopt(fd, SOL_SOCKET, SO_PRIORITY, &(int){(int)priority}, sizeof(int))) {
			perror("flood: SO_PRIORITY"); return 2;
		}
		if (!size) size = 1514;
		if (size < 60) usage("--size: a frame is at least 60 bytes");

		struct ether_header *eth = (struct ether_header *)frame;
		mac(dst_mac, eth->ether_dhost);
		memcpy(eth->ether_shost, source, 6);
		uint8_t *l3 = frame + sizeof *eth;
		if (ethertype) {
			eth->ether_type = htons(ethertype);
		} else {
			struct in6_addr dst6, src6 = {0};
			struct in_addr dst4, src4 = {0};
			int family = address(dst_ip, &dst6, &dst4);
			if (src_ip && address(src_ip, &src6, &src4) != family) usage("--src-ip and --dst-ip differ in family");
			size_t l3_length = size - sizeof *eth;
			if (family == AF_INET) {
				if (l3_length < 28) usage("--size too small for IPv4/UDP");
				eth->ether_type = htons(ETHERTYPE_IP);
				l3[0] = 0x45, l3[8] = 64, l3[9] = IPPROTO_UDP;
				*(uint16_t *)(l3 + 2) = htons(l3_length);
				memcpy(l3 + 12, &src4, 4), memcpy(l3 + 16, &dst4, 4);
				*(uint16_t *)(l3 + 10) = fold(sum16(l3, 20, 0));
				uint8_t *udp = l3 + 20;
				*(uint16_t *)udp = htons(port), *(uint16_t *)(udp + 2) = htons(port);
				*(uint16_t *)(udp + 4) = htons(l3_length - 20); /* checksum 0: none, allowed in IPv4 */
			} else {
				if (l3_length < 48) usage("--size too small for IPv6/UDP");
				eth->ether_type = htons(ETHERTYPE_IPV6);
				size_t udp_length = l3_length - 40;
				l3[0] = 0x60, l3[6] = IPPROTO_UDP, l3[7] = 64;
				*(uint16_t *)(l3 + 4) = htons(udp_length);
				memcpy(l3 + 8, &src6, 16), memcpy(l3 + 24, &dst6, 16);
				uint8_t *udp = l3 + 40;
				*(uint16_t *)udp = htons(port), *(uint16_t *)(udp + 2) = htons(port);
				*(uint16_t *)(udp + 4) = htons(udp_length);
				/* IPv6 needs the UDP checksum: pseudo-header (addresses, length, protocol) + datagram. */
				uint32_t sum = sum16(l3 + 8, 32, 0) + udp_length + IPPROTO_UDP;
				*(uint16_t *)(udp + 6) = fold(sum16(udp, udp_length, sum));
			}
		}
		struct sockaddr_ll link = {.sll_family = AF_PACKET, .sll_ifindex = ifindex, .sll_halen = 6};
		memcpy(link.sll_addr, eth->ether_dhost, 6);
		status = send_until(fd, frame, size, (struct sockaddr *)&link, sizeof link, deadline, &counts);
	}
	double elapsed = now() - start;
	char shown_priority[16] = "null";
	if (has_priority) snprintf(shown_priority, sizeof shown_priority, "%lu", priority);
	printf("{\"mode\":\"%s\",\"seconds\":%.3f,\"packets\":%lu,\"bytes\":%lu,\"mbit\":%.1f,\"queue_full\":%lu,"
	       "\"refused\":%lu,\"priority\":%s,\"bypass\":%s}\n",
	       mode, elapsed, counts.packets, counts.bytes, counts.bytes * 8 / elapsed / 1e6, counts.full, counts.refused,
	       shown_priority, bypass ? "true" : "false");
	return status;
}
