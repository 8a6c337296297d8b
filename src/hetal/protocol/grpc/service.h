// The server role as a long-running network service (issue 14): one process hosting many jobs
// of many tenants over gRPC with mutual TLS. Each job is a bundle directory (store.h) that the
// server role trains on (protocol.h: server_train), epoch by epoch, with a checkpoint per
// epoch; a restarted service resumes its unfinished jobs.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "hetal/protocol/cryptotl/transfer.h"
#include "hetal/protocol/grpc/store.h"

namespace hetal::protocol::grpc_transport {

struct ServiceOptions {
  std::string listen = "127.0.0.1:0";        ///< HOST:PORT (port 0: any free port)
  std::string data_dir;                      ///< the service's state (store.h)
  std::string ca_file, cert_file, key_file;  ///< PEM: client CA, server certificate and key
  bool insecure = false;                     ///< accept parameters below 128-bit security
  std::size_t max_running = 1;               ///< jobs training at once (the others wait, queued)
  double decision_timeout_s = 24 * 3600;     ///< then a job waiting for a decision stops cleanly
  double heartbeat_s = 15;                   ///< watch streams send a heartbeat at least this often
  std::string port_file;                     ///< where the bound port is written once listening
  StoreLimits limits;
  std::string cryptotl_model;  ///< CryptoTL: the service's private lower network (empty: none)
  std::optional<cryptotl::DpOptions> cryptotl_dp;  ///< noise on every Forward's outputs
  std::function<void(const std::string&)> log;     ///< one line per event (stderr when empty)
};

/// Runs the service until SIGINT or SIGTERM (then running jobs stop where they are, to resume
/// at the next start). Returns the process exit code.
int serve(const ServiceOptions& options);

/// The identity the service derives a tenant from: the client certificate's common name.
inline constexpr const char* kTenantProperty = "x509_common_name";

}  // namespace hetal::protocol::grpc_transport
