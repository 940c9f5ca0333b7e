// Two processes bounce a byte over pipes N times: the cost of a context-switch pair.
// Run it pinned to one CPU with and without pyprofd's context-switch records open:
//   cc -O2 bench/switch_cost.c -o /tmp/switch_cost && taskset -c 0 /tmp/switch_cost 200000
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
int main(int argc, char** argv) {
  long n = argc > 1 ? atol(argv[1]) : 200000;
  int a[2], b[2]; pipe(a); pipe(b);
  char c = 0;
  if (fork() == 0) { for (long i = 0; i < n; ++i) { read(a[0], &c, 1); write(b[1], &c, 1); } _exit(0); }
  struct timespec t0, t1; clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < n; ++i) { write(a[1], &c, 1); read(b[0], &c, 1); }
  clock_gettime(CLOCK_MONOTONIC, &t1); wait(NULL);
  printf("%.2f us per round trip\n", ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / n / 1000.0);
}
