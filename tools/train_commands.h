// The training workflow of the hetal CLI: `hetal client ...`, `hetal server ...`, `hetal demo`.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>

namespace hetal::cli {

class TrainingCommands {
 public:
  /// Adds the subcommands to app; `insecure` is the app-wide flag.
  TrainingCommands(CLI::App& app, const bool& insecure);
  ~TrainingCommands();
  /// Runs the parsed subcommand, if one of ours; returns false otherwise.
  bool run(int& exit_code);

  struct Impl;  ///< the options, shared by the commands' files (train_impl.h)

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace hetal::cli
