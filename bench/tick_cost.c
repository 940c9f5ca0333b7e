/* The floor of a sampling loop: a process that only wakes on absolute
 * CLOCK_MONOTONIC deadlines at RATE Hz for SECONDS, with the same bookkeeping as
 * pyprofd's loop (clock_gettime around the sleep, late ticks counted as missed,
 * not made up), and reports its own CPU (user + system) per tick.
 * usage: tick_cost RATE SECONDS [TIMERSLACK_NS]
 * TIMERSLACK_NS sets prctl(PR_SET_TIMERSLACK) first (the default slack is 50 us,
 * which caps any sleeping loop near 10 kHz). prints: ticks N missed M wall_s W cpu_s C us_per_tick U */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>

static int64_t ns_of(clockid_t clk) {
  struct timespec ts;
  clock_gettime(clk, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    fprintf(stderr, "usage: tick_cost RATE SECONDS [TIMERSLACK_NS]\n");
    return 2;
  }
  double rate = atof(argv[1]), seconds = atof(argv[2]);
  if (!(rate >= 1 && rate <= 100000) || !(seconds > 0 && seconds <= 600)) {
    fprintf(stderr, "tick_cost: RATE 1..100000, SECONDS 0..600\n");
    return 2;
  }
  if (argc == 4 && prctl(PR_SET_TIMERSLACK, strtoul(argv[3], NULL, 10), 0, 0, 0) != 0) {
    perror("tick_cost: prctl(PR_SET_TIMERSLACK)");
    return 1;
  }
  const int64_t period = (int64_t)(1e9 / rate);
  const int64_t cpu0 = ns_of(CLOCK_PROCESS_CPUTIME_ID);
  const int64_t start = ns_of(CLOCK_MONOTONIC);
  const int64_t end = start + (int64_t)(seconds * 1e9);
  int64_t next = start;
  uint64_t ticks = 0, missed = 0;
  for (;;) {
    int64_t now = ns_of(CLOCK_MONOTONIC);
    if (now < next) {
      struct timespec ts = {(time_t)(next / 1000000000), (long)(next % 1000000000)};
      if (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) continue;
      now = ns_of(CLOCK_MONOTONIC);
    }
    if (now >= end) break;
    if (now - next >= period) {
      int64_t late = (now - next) / period;
      missed += (uint64_t)late;
      next += late * period;
    }
    next += period;
    ++ticks;
  }
  int64_t cpu = ns_of(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
  int64_t wall = ns_of(CLOCK_MONOTONIC) - start;
  printf("ticks %llu missed %llu wall_s %.3f cpu_s %.6f us_per_tick %.3f\n", (unsigned long long)ticks,
         (unsigned long long)missed, wall / 1e9, cpu / 1e9, ticks ? cpu / 1e3 / ticks : 0.0);
  return 0;
}
