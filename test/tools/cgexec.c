/*
 * cgexec CGROUP_DIR CMD ARGS...: joins a cgroup v2 directory (writes its own pid into
 * CGROUP_DIR/cgroup.procs), then execs CMD, so every socket CMD and its children open belongs to
 * that cgroup from the first one on (a socket keeps the cgroup it was created in).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc < 3) {
		fprintf(stderr, "usage: cgexec CGROUP_DIR CMD ARGS...\n");
		return 64;
	}
	char path[4096];
	if (snprintf(path, sizeof path, "%s/cgroup.procs", argv[1]) >= (int)sizeof path) {
		fprintf(stderr, "cgexec: path too long\n");
		return 64;
	}
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		perror("cgexec: open cgroup.procs");
		return 125;
	}
	char pid[32];
	int length = snprintf(pid, sizeof pid, "%d\n", getpid());
	if (write(fd, pid, (size_t)length) != length) {
		perror("cgexec: write cgroup.procs");
		return 125;
	}
	close(fd);
	execvp(argv[2], argv + 2);
	perror("cgexec: exec");
	return 127;
}
