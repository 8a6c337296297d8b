// Helpers shared by the bench binaries.
#pragma once

#include <chrono>

namespace hetal::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace hetal::bench
