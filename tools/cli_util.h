// Small helpers shared by the CLI's command files: timing and a progress bar with ETA.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>

namespace hetal::cli {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0);
/// "1m05s", "2h03m".
std::string hms(double seconds);

/// done, total, what: a one-line progress bar with elapsed time and ETA on stderr (a new line
/// per `what`).
using ProgressFn = std::function<void(std::size_t, std::size_t, const std::string&)>;
ProgressFn progress_bar(const std::string& who);

}  // namespace hetal::cli
