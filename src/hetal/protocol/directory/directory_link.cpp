// The directory transport, client side: the client and the server share one bundle directory,
// each message a file written under a temporary name and renamed (src/hetal/protocol/README.md).
#include "hetal/protocol/bundle.h"

namespace hetal::protocol {

using namespace detail;

namespace {
/// The directory transport's client side: the server reads and writes the same directory.
class DirectoryLink final : public ServerLink {
 public:
  explicit DirectoryLink(fs::path bundle) : bundle_(std::move(bundle)) {}
  std::string bundle() const override { return bundle_.string(); }
  void await_epoch(std::size_t e, const WaitOptions& w) override {
    wait_for(epoch_file(bundle_, "val", e, ".cts"), w, {bundle_ / "server" / "error.txt"});
  }
  void decide(std::size_t e, bool stop, const std::string& abort) override {
    v1::Decision d;
    d.set_epoch(e);
    d.set_stop(stop);
    d.set_abort(abort);
    write_message(epoch_file(bundle_, "decision", e, ".json"), d);
  }
  void await_done(const WaitOptions& w) override {
    wait_for(bundle_ / "done.json", w, {bundle_ / "server" / "error.txt"});
  }
  void fetch_model(std::size_t) override {}  // the server wrote it here
  void infer(std::size_t epoch, const std::vector<std::size_t>& rows,
             const WaitOptions& w) override {
    const fs::path dir = bundle_ / "infer";
    v1::InferRequest req;
    req.set_epoch(epoch);
    for (auto r : rows) req.add_rows(r);
    write_message(dir / "request.json", req);
    wait_for(dir / "done.json", w, {bundle_ / "server" / "infer-error.txt"});
  }

 private:
  fs::path bundle_;
};
}  // namespace

std::unique_ptr<ServerLink> directory_link(const std::string& bundle_dir) {
  return std::make_unique<DirectoryLink>(bundle_dir);
}

}  // namespace hetal::protocol
