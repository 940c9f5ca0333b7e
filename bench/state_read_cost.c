// What the cpu-mode idle check pays per read of another thread's /proc files: mean and
// slowest of N preads of its stat, syscall and schedstat files, and of an fstat of the
// process's task directory (the thread count).
//   cc -O2 bench/state_read_cost.c -o /tmp/state_read_cost && /tmp/state_read_cost PID TID [N]
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void report(const char* what, double total, double slowest, int n) {
  printf("%-10s mean %6.2f us   slowest %8.1f us   (%d reads)\n", what, total / n * 1e6, slowest * 1e6, n);
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s PID TID [N]\n", argv[0]);
    return 2;
  }
  int pid = atoi(argv[1]), tid = atoi(argv[2]), n = argc > 3 ? atoi(argv[3]) : 20000;
  const char* files[] = {"stat", "syscall", "schedstat"};
  char path[128], buf[512];
  for (int i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "/proc/%d/task/%d/%s", pid, tid, files[i]);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
      perror(path);
      continue;
    }
    double total = 0, slowest = 0;
    for (int k = 0; k < n; k++) {
      double t = now();
      if (pread(fd, buf, sizeof buf, 0) <= 0) return 1;
      double d = now() - t;
      total += d;
      if (d > slowest) slowest = d;
    }
    report(files[i], total, slowest, n);
    close(fd);
  }
  snprintf(path, sizeof path, "/proc/%d/task", pid);
  int dir = open(path, O_RDONLY | O_DIRECTORY);
  if (dir < 0) return 1;
  double total = 0, slowest = 0;
  struct stat st;
  for (int k = 0; k < n; k++) {
    double t = now();
    fstat(dir, &st);
    double d = now() - t;
    total += d;
    if (d > slowest) slowest = d;
  }
  report("fstat task", total, slowest, n);
  return 0;
}
