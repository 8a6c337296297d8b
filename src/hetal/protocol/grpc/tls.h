// Mutual TLS for the gRPC transport: PEM files in, credentials out. Both sides present a
// certificate from the same CA; the server requires and verifies the client's (the client
// certificate's common name is the tenant).
#pragma once

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>

namespace hetal::protocol::grpc_transport {

/// The per-message cap on both sides: a 4 MiB chunk and its envelope.
inline constexpr int kMaxMessageBytes = (4 << 20) + (64 << 10);
/// Upload chunk size.
inline constexpr std::size_t kUploadChunk = std::size_t{4} << 20;

/// A PEM file's text; throws std::runtime_error naming the file when it cannot be read or
/// holds no PEM block.
std::string read_pem(const std::string& path, const char* what);

std::shared_ptr<grpc::ServerCredentials> server_credentials(const std::string& ca_file,
                                                            const std::string& cert_file,
                                                            const std::string& key_file);
std::shared_ptr<grpc::ChannelCredentials> channel_credentials(const std::string& ca_file,
                                                              const std::string& cert_file,
                                                              const std::string& key_file);

}  // namespace hetal::protocol::grpc_transport
