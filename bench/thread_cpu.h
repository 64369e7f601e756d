// CPU time of the calling thread, in seconds: what the benchmarks compare
// (a busy machine's other work does not count, its cache effects do).
#pragma once

#include <time.h>

inline double ThreadCpu() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}
