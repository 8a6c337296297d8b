#include "hetal/protocol/grpc/tls.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace hetal::protocol::grpc_transport {

std::string read_pem(const std::string& path, const char* what) {
  if (path.empty()) throw std::runtime_error(std::string("mutual TLS needs ") + what);
  std::ifstream in(path);
  if (!in) throw std::runtime_error(std::string(what) + " " + path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string s = ss.str();
  if (s.find("-----BEGIN ") == std::string::npos)
    throw std::runtime_error(std::string(what) + " " + path + ": not a PEM file");
  return s;
}

std::shared_ptr<grpc::ServerCredentials> server_credentials(const std::string& ca_file,
                                                            const std::string& cert_file,
                                                            const std::string& key_file) {
  grpc::SslServerCredentialsOptions o(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  o.pem_root_certs = read_pem(ca_file, "--ca (the CA of client certificates)");
  o.pem_key_cert_pairs.push_back({read_pem(key_file, "--key (the server's private key)"),
                                  read_pem(cert_file, "--cert (the server's certificate)")});
  return grpc::SslServerCredentials(o);
}

std::shared_ptr<grpc::ChannelCredentials> channel_credentials(const std::string& ca_file,
                                                              const std::string& cert_file,
                                                              const std::string& key_file) {
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = read_pem(ca_file, "--ca (the CA of the server's certificate)");
  o.pem_private_key = read_pem(key_file, "--key (the client's private key)");
  o.pem_cert_chain = read_pem(cert_file, "--cert (the client's certificate)");
  return grpc::SslCredentials(o);
}

}  // namespace hetal::protocol::grpc_transport
