// The child processes of the demo: the server role over the directory transport, or the gRPC
// service with test certificates.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>

#include "train_impl.h"

extern char** environ;

namespace hetal::cli {

Child::Child(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  std::string self = fs::read_symlink("/proc/self/exe").string();
  argv.push_back(self.data());
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  // Exec through the magic link, not the name it resolves to: it reaches this very binary
  // even if the file was rebuilt or removed meanwhile (the name then ends in "(deleted)").
  if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), environ) != 0)
    throw std::runtime_error("cannot start the server process");
}
bool Child::alive() {
  if (finished) return false;
  if (waitpid(pid, &status, WNOHANG) == pid) finished = true;
  return !finished;
}
int Child::wait() {
  if (!finished && waitpid(pid, &status, 0) == pid) finished = true;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
/// The client side failed while the server still runs: give it a few seconds to finish (an
/// aborted run's server exits by itself), then stop it, so that no orphan waits for hours.
Child::~Child() {
  for (int i = 0; i < 100 && alive(); ++i) usleep(100000);
  if (alive()) {
    kill(pid, SIGTERM);
    wait();
  }
}

std::unique_ptr<Child> server_process(const char* command, const std::string& bundle,
                                      bool insecure) {
  std::vector<std::string> args;
  if (insecure) args.emplace_back("--insecure");
  for (const char* a : {"server", command, "--bundle"}) args.emplace_back(a);
  args.push_back(bundle);
  return std::make_unique<Child>(args);
}

/// `hetal [--insecure] server serve` on a free loopback port with test certificates made in
/// work/certs (scripts/make_certs.sh; the client's certificate names the tenant "hetal-demo"):
/// the demo's server role over gRPC. Returns the service and the client's endpoint.
std::pair<std::unique_ptr<Child>, protocol::grpc_transport::Endpoint> start_service(
    const fs::path& work, bool insecure) {
  const fs::path certs = work / "certs", port_file = work / "service.port";
  const std::string script = std::string(HETAL_SOURCE_DIR) + "/scripts/make_certs.sh";
  if (!fs::exists(script))
    throw std::runtime_error(script + ": missing (the demo makes its test certificates with it)");
  const std::string cmd = "bash '" + script + "' '" + certs.string() + "' hetal-demo >/dev/null";
  if (std::system(cmd.c_str()) != 0)
    throw std::runtime_error("making test certificates failed (is openssl installed?)");
  std::vector<std::string> args;
  if (insecure) args.emplace_back("--insecure");
  for (const std::string& a : std::vector<std::string>{
           "server", "serve", "--listen", "127.0.0.1:0", "--data", (work / "server").string(),
           "--ca", (certs / "ca.crt").string(), "--cert", (certs / "server.crt").string(), "--key",
           (certs / "server.key").string(), "--port-file", port_file.string()})
    args.push_back(a);
  auto child = std::make_unique<Child>(args);
  std::string port;
  for (int i = 0; i < 300 && port.empty(); ++i) {
    if (!child->alive()) throw std::runtime_error("the gRPC service exited at start");
    std::ifstream in(port_file);
    in >> port;
    if (port.empty()) usleep(100000);
  }
  if (port.empty()) throw std::runtime_error("the gRPC service did not start listening");
  protocol::grpc_transport::Endpoint ep;
  ep.server = "127.0.0.1:" + port;
  ep.ca_file = (certs / "ca.crt").string();
  ep.cert_file = (certs / "hetal-demo.crt").string();
  ep.key_file = (certs / "hetal-demo.key").string();
  return {std::move(child), ep};
}

/// Waiting for a child's files fails at once when the child has exited.
protocol::WaitOptions waiting_on(Child& child, double timeout_s) {
  protocol::WaitOptions w;
  w.timeout_s = timeout_s;
  w.peer_alive = [&child] { return child.alive(); };
  return w;
}

}  // namespace hetal::cli
