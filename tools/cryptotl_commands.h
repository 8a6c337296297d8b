// The CryptoTL mode of the hetal CLI (issue 15): `hetal cryptotl server-train | encrypt |
// forward | client-train | predict | evaluate`.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>

namespace hetal::cli {

class CryptotlCommands {
 public:
  /// Adds `cryptotl` and its subcommands to app; `insecure` is the app-wide flag.
  CryptotlCommands(CLI::App& app, const bool& insecure);
  ~CryptotlCommands();
  /// Runs the parsed subcommand, if one of ours; returns false otherwise.
  bool run(int& exit_code);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace hetal::cli
