// `hetal cryptotl evaluate`: CryptoTL's transfer pairs end to end with real keys and files (the
// roles of protocol/cryptotl in one process), against the same upper layers trained on the raw
// inputs (no transfer) and on the plain lower network's outputs (no encryption).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "hetal/nn/torch_models.h"

namespace hetal::cli {

struct EvaluateOptions {
  std::vector<std::string> pairs;   ///< "source:target"; empty: the default table
  std::vector<double> dp_epsilons;  ///< also train on DP-noised outputs at these epsilons
  double dp_delta = 1e-5;
  std::string out, work;  ///< markdown table; folder for keys and bundles
  std::size_t limit = 0;  ///< at most this many rows per split (0: all)
  std::size_t seeds = 5;  ///< upper-layer trainings per method (seed, seed + 1, ...)
  nn::TrainOptions train;
};

void add_evaluate_options(CLI::App* c, EvaluateOptions& o);
int run_evaluate(const EvaluateOptions& o);

}  // namespace hetal::cli
