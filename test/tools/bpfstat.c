/*
 * bpfstat PROG_ID: a loaded BPF program's run statistics (run_cnt, run_time_ns), read from the
 * fdinfo of a descriptor opened by id. The kernel counts them only while the sysctl
 * kernel.bpf_stats_enabled is 1. Prints one JSON line.
 */
#define _GNU_SOURCE
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc != 2) {
		fprintf(stderr, "usage: bpfstat PROG_ID\n");
		return 64;
	}
	union bpf_attr attr;
	memset(&attr, 0, sizeof attr);
	attr.prog_id = (unsigned)strtoul(argv[1], NULL, 10);
	int fd = (int)syscall(__NR_bpf, BPF_PROG_GET_FD_BY_ID, &attr, sizeof attr);
	if (fd < 0) {
		perror("bpfstat: BPF_PROG_GET_FD_BY_ID");
		return 2;
	}
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
	FILE *info = fopen(path, "r");
	if (!info) {
		perror("bpfstat: fdinfo");
		return 2;
	}
	unsigned long long runs = 0, nanoseconds = 0;
	while (fgets(line, sizeof line, info)) {
		sscanf(line, "run_cnt: %llu", &runs);
		sscanf(line, "run_time_ns: %llu", &nanoseconds);
	}
	printf("{\"run_cnt\":%llu,\"run_time_ns\":%llu}\n", runs, nanoseconds);
	return 0;
}
