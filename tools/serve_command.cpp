#include "serve_command.h"

namespace hetal::cli {

void ServeCommand::add(CLI::App* server) {
  auto& o = options;
  app = server->add_subcommand(
      "serve",
      "serve many clients' jobs over gRPC with mutual TLS (scripts/make_certs.sh makes "
      "test certificates)");
  app->add_option("--listen", o.listen, "HOST:PORT (port 0: any free port)")->capture_default_str();
  app->add_option("--data", o.data_dir, "the service's state: objects, jobs, checkpoints")
      ->required();
  app->add_option("--ca", o.ca_file, "CA certificate that client certificates must chain to")
      ->required();
  app->add_option("--cert", o.cert_file, "the server's certificate (PEM)")->required();
  app->add_option("--key", o.key_file, "the server's private key (PEM)")->required();
  app->add_option("--max-running", o.max_running, "jobs training at once (others are queued)")
      ->capture_default_str();
  app->add_option("--decision-timeout", o.decision_timeout_s,
                  "seconds a job waits for the client's decision, then stops cleanly")
      ->capture_default_str();
  app->add_option("--heartbeat", o.heartbeat_s, "seconds between heartbeats on a watch")
      ->capture_default_str();
  app->add_option("--port-file", o.port_file, "write the bound port here once listening");
  app->add_option("--quota-gb", quota_gb, "storage per tenant (GB)")->capture_default_str();
  app->add_option("--quota-jobs", o.limits.tenant_jobs, "queued or running jobs per tenant")
      ->capture_default_str();
  app->add_option("--cryptotl-model", o.cryptotl_model,
                  "CryptoTL: serve this private lower network (hetal cryptotl server-train)");
  app->add_option("--cryptotl-dp-epsilon", dp.epsilon,
                  "CryptoTL: Gaussian noise for (epsilon, delta)-DP on every output row (0: none)");
  app->add_option("--cryptotl-dp-delta", dp.delta, "")->capture_default_str();
  app->add_option("--cryptotl-dp-input-radius", dp.input_radius,
                  "the inputs' L2 ball for the sensitivity (0: the box [lo, hi]^d)")
      ->capture_default_str();
  app->add_option("--cryptotl-dp-input-lo", dp.input_lo, "")->capture_default_str();
  app->add_option("--cryptotl-dp-input-hi", dp.input_hi, "")->capture_default_str();
}

int ServeCommand::run(bool insecure) {
  options.insecure = insecure;
  if (!(quota_gb > 0)) throw CLI::ValidationError("--quota-gb", "must be positive");
  options.limits.tenant_bytes = static_cast<std::uint64_t>(quota_gb * 1e9);
  if (dp.epsilon < 0)
    throw CLI::ValidationError("--cryptotl-dp-epsilon", "must be positive (0: no noise)");
  if (dp.epsilon > 0) options.cryptotl_dp = dp;
  return protocol::grpc_transport::serve(options);
}

}  // namespace hetal::cli
