// `hetal server ...`: the compute provider's commands (train, infer, serve).
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>

#include "hetal/protocol/grpc/store.h"
#include "train_impl.h"

namespace hetal::cli {

bool run_server_commands(TrainingCommands::Impl& m, int& code) {
  const bool ins = m.insecure;
  code = 0;
  if (*m.serve.app) {
    code = m.serve.run(ins);
    return true;
  }
  if (*m.s_train) {
    const auto r =
        protocol::server_train(m.bundle_dir, ins, m.resume, m.waiting("server"), m.lower_network);
    const auto& t = r.times;
    const double n = t.steps ? static_cast<double>(t.steps) : 1.0;
    std::printf(
        "server: %zu epochs, %zu steps%s; per step: matrix products %.1f s, softmax %.1f s "
        "(%zu bootstraps in all), model bootstrapping %.1f s, other %.1f s, total %.1f s\n",
        r.epochs, t.steps, r.resumed_from ? " (resumed)" : "", t.matmul / n, t.softmax / n,
        t.softmax_bootstraps, t.bootstrap / n, t.other / n, t.total() / n);
    if (r.network_seconds > 0)
      std::printf(
          "server: the lower network on the features: %.1f s in all (training and "
          "validation batches)\n",
          r.network_seconds);
    return true;
  }
  if (*m.s_infer) {
    protocol::server_infer(m.bundle_dir, ins, m.waiting("server"), m.lower_network);
    return true;
  }
  return false;
}

}  // namespace hetal::cli
