// The client's side of the gRPC transport: uploads of the bundle's objects (resumable,
// content-addressed) and the job's conversation (watch, decisions, downloads, inference) as a
// ServerLink, so the client role (protocol.h) runs unchanged over the network.
#pragma once

#include <memory>
#include <string>

#include "hetal/protocol/messages/hetal.pb.h"
#include "hetal/protocol/protocol.h"

namespace hetal::protocol::grpc_transport {

/// Where the service is and the client's TLS files (PEM).
struct Endpoint {
  std::string server;  ///< HOST:PORT
  std::string ca_file, cert_file, key_file;
  int retries = 8;  ///< reconnections after a cut connection, per call
};

struct Submitted {
  std::string job_id;
  std::size_t objects = 0, already_there = 0;  ///< objects of the job; those not sent again
  std::uint64_t bytes_sent = 0;
};
/// Uploads the bundle's keys and data (objects the service already holds for this tenant are
/// not sent again; an interrupted upload resumes where the service's committed size ends) and
/// submits the training job.
Submitted submit_bundle(const Endpoint& ep, const std::string& bundle_dir,
                        const Progress& progress = {});

/// The job's conversation; received files land in `bundle_dir` (the client's copy).
std::unique_ptr<ServerLink> grpc_link(const Endpoint& ep, const std::string& bundle_dir,
                                      const std::string& job_id);

/// The job's state as one line ("RUNNING, 2 epochs done"), and cancellation.
std::string job_status(const Endpoint& ep, const std::string& job_id);
std::string cancel_job(const Endpoint& ep, const std::string& job_id);

/// CryptoTL over gRPC: uploads a bundle folder's parameters, evaluation keys and inputs
/// (client_encrypt wrote them; objects already held are not sent again), has the service run
/// its lower network on them, and downloads the outputs and result.json into the bundle: the
/// same files `hetal cryptotl forward` writes on the directory transport.
v1::TransferResult cryptotl_forward(const Endpoint& ep, const std::string& bundle_dir);

}  // namespace hetal::protocol::grpc_transport
