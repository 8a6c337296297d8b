// `hetal server serve`: the server role as a long-running gRPC service (issue 14).
#pragma once

#include <CLI/CLI.hpp>

#include "hetal/protocol/grpc/service.h"

namespace hetal::cli {

struct ServeCommand {
  CLI::App* app = nullptr;
  protocol::grpc_transport::ServiceOptions options;
  double quota_gb = 64;
  protocol::cryptotl::DpOptions dp;
  void add(CLI::App* server);
  /// The exit code.
  int run(bool insecure);
};

}  // namespace hetal::cli
