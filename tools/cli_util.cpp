#include "cli_util.h"

#include <cstdio>
#include <memory>

namespace hetal::cli {

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string hms(double s) {
  const long t = static_cast<long>(s + 0.5);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  return buf;
}

ProgressFn progress_bar(const std::string& who) {
  struct State {
    Clock::time_point t0 = Clock::now();
    std::string what;
    std::size_t first_done = 0;
  };
  auto st = std::make_shared<State>();
  return [st, who](std::size_t done, std::size_t total, const std::string& what) {
    if (what != st->what) {  // a new phase: the clock starts at its first report
      st->what = what;
      st->t0 = Clock::now();
      st->first_done = done;
    }
    const double el = since(st->t0);
    const std::size_t counted = done - st->first_done;
    const std::string eta =
        counted ? hms(el / static_cast<double>(counted) * static_cast<double>(total - done)) : "?";
    const int width = 30;
    const int fill =
        total ? static_cast<int>(width * static_cast<double>(done) / static_cast<double>(total))
              : 0;
    std::string bar(static_cast<std::size_t>(fill), '=');
    bar.resize(width, ' ');
    std::fprintf(stderr, "\r%s [%s] %zu/%zu %s  elapsed %s  ETA %s   ", who.c_str(), bar.c_str(),
                 done, total, what.c_str(), hms(el).c_str(), eta.c_str());
    if (done == total) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  };
}

}  // namespace hetal::cli
