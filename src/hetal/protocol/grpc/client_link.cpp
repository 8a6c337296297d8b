#include "hetal/protocol/grpc/client_link.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "hetal/protocol/bundle.h"
#include "hetal/protocol/cryptotl/transfer.h"
#include "hetal/protocol/grpc/tls.h"
#include "hetal/protocol/messages/hetal.grpc.pb.h"

namespace hetal::protocol::grpc_transport {

using detail::fail;
using detail::fs::path;
namespace fs = std::filesystem;
using grpc::StatusCode;

namespace {

std::unique_ptr<v1::Hetal::Stub> connect(const Endpoint& ep) {
  if (ep.server.empty()) fail("--server HOST:PORT is required");
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  // Hours-long watches: keepalive pings every 60 s, allowed by the server (network.md).
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 60000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  std::shared_ptr<grpc::ChannelCredentials> creds;
  try {
    creds = channel_credentials(ep.ca_file, ep.cert_file, ep.key_file);
  } catch (const std::exception& e) {
    fail(e.what());
  }
  return v1::Hetal::NewStub(grpc::CreateCustomChannel(ep.server, creds, args));
}

/// Worth retrying after a pause: the connection was cut or the server is restarting.
bool transient(const grpc::Status& s) {
  return s.error_code() == StatusCode::UNAVAILABLE || s.error_code() == StatusCode::ABORTED ||
         s.error_code() == StatusCode::DEADLINE_EXCEEDED;
}

[[noreturn]] void fail_status(const std::string& what, const grpc::Status& s) {
  fail(what + ": " + s.error_message() + " (gRPC status " + std::to_string(s.error_code()) + ")");
}

void pause(int attempt) {
  std::this_thread::sleep_for(std::chrono::milliseconds(250 << std::min(attempt, 4)));
}

/// Unary call with retries on transient failures (every call here is idempotent).
template <class F>
void call(const Endpoint& ep, const std::string& what, F&& f) {
  for (int attempt = 0;; ++attempt) {
    const grpc::Status s = f();
    if (s.ok()) return;
    if (!transient(s) || attempt >= ep.retries) fail_status(what, s);
    pause(attempt);
  }
}

std::pair<std::string, std::uint64_t> hash_file(const fs::path& p) {
  if (!fs::is_regular_file(p)) fail(p.string() + ": cannot open");
  core::Sha256 h;
  const std::uint64_t n = h.update_file(p.string());
  return {h.finish_hex(), n};
}

/// The u32 key count of a GaloisKeys object at the start of `p`.
std::uint32_t galois_count(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  unsigned char b[28] = {};
  in.read(reinterpret_cast<char*>(b), 28);
  if (in.gcount() != 28) fail(p.string() + ": truncated key file");
  return static_cast<std::uint32_t>(b[24] | b[25] << 8 | b[26] << 16 | b[27] << 24);
}

struct UploadStats {
  std::size_t objects = 0, already_there = 0;
  std::uint64_t bytes_sent = 0;
};

v1::ObjectRef upload(const Endpoint& ep, v1::Hetal::Stub& stub, const fs::path& file,
                     v1::ObjectKind kind, std::uint32_t count, const std::string& params_sha,
                     UploadStats* stats = nullptr) {
  v1::ObjectRef ref;
  const auto [sha, size] = hash_file(file);
  ref.set_sha256(sha);
  ref.set_size(size);
  ref.set_kind(kind);
  ref.set_count(count);
  if (kind != v1::PARAMETERS) ref.set_parameters_sha256(params_sha);
  const std::string what = "upload of " + file.filename().string();
  if (stats) ++stats->objects;
  for (int attempt = 0;; ++attempt) {
    v1::QueryWriteStatusRequest q;
    *q.mutable_object() = ref;
    v1::QueryWriteStatusResponse st;
    grpc::Status s;
    {
      grpc::ClientContext c;
      s = stub.QueryWriteStatus(&c, q, &st);
    }
    if (s.ok() && st.complete()) {  // the service has it: nothing to send
      if (stats && attempt == 0) ++stats->already_there;
      return ref;
    }
    if (s.ok()) {
      std::ifstream in(file, std::ios::binary);
      in.seekg(static_cast<std::streamoff>(st.committed_size()));
      grpc::ClientContext c;
      v1::WriteResponse resp;
      auto w = stub.Write(&c, &resp);
      std::uint64_t at = st.committed_size();
      std::string buf(kUploadChunk, '\0');
      bool first = true, ok = true;
      do {
        in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
        const auto n = static_cast<std::size_t>(in.gcount());
        if (n == 0 && at < size) fail(file.string() + ": changed while it was being uploaded");
        v1::WriteRequest r;
        if (first) *r.mutable_object() = ref;
        first = false;
        r.set_write_offset(at);
        r.set_data(buf.data(), n);
        at += n;
        r.set_finish_write(at == size);
        ok = w->Write(r);
        if (ok && stats) stats->bytes_sent += n;
      } while (ok && at < size);
      w->WritesDone();
      s = w->Finish();
      if (s.ok()) return ref;
    }
    // A cut stream's handler may hold the object for a while (ABORTED): wait longer then.
    if (!transient(s) || attempt >= ep.retries * 4) fail_status(what, s);
    pause(attempt);  // then ask what the service committed and go on from there
  }
}

/// A job's output into `dest` (temporary name, resumed after a cut, then renamed).
void download(const Endpoint& ep, v1::Hetal::Stub& stub, const std::string& job,
              const std::string& name, const fs::path& dest) {
  fs::create_directories(dest.parent_path());
  const fs::path tmp = dest.string() + ".part";
  fs::remove(tmp);
  std::uint64_t have = 0;
  for (int attempt = 0;; ++attempt) {
    std::ofstream out(tmp, std::ios::binary | std::ios::app);
    v1::ReadRequest req;
    req.set_job_id(job);
    req.set_name(name);
    req.set_read_offset(have);
    grpc::ClientContext c;
    auto r = stub.Read(&c, req);
    v1::ReadResponse chunk;
    while (r->Read(&chunk)) {
      out.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size()));
      have += chunk.data().size();
    }
    out.close();
    const grpc::Status s = r->Finish();
    if (s.ok()) break;
    if (!transient(s) || attempt >= ep.retries) fail_status("download of " + name, s);
    pause(attempt);
  }
  fs::rename(tmp, dest);
}

class GrpcLink final : public ServerLink {
 public:
  GrpcLink(Endpoint ep, fs::path bundle, std::string job)
      : ep_(std::move(ep)), bundle_(std::move(bundle)), job_(std::move(job)), stub_(connect(ep_)) {}

  std::string bundle() const override { return bundle_.string(); }

  void await_epoch(std::size_t e, const WaitOptions& w) override {
    next_event(
        w,
        [&](const v1::WatchEvent& ev) {
          if (ev.has_epoch() && ev.epoch().epoch() == e) {
            download(ep_, *stub_, job_, ev.epoch().validation_logits(),
                     detail::epoch_file(bundle_, "val", e, ".cts"));
            return true;
          }
          if (ev.has_finished())
            fail("the job ended before epoch " + std::to_string(e + 1) + ": " +
                 describe(ev.finished()));
          return false;
        },
        e);
  }

  void decide(std::size_t e, bool stop, const std::string& abort) override {
    v1::Decision d;
    d.set_job_id(job_);
    d.set_epoch(e);
    d.set_stop(stop);
    // Only the stop bit leaves the client: the reason stays here (the decrypted values behind
    // it are the client's).
    if (!abort.empty()) d.set_abort("the client found the run broken");
    v1::Job j;
    call(ep_, "decision for epoch " + std::to_string(e + 1), [&] {
      grpc::ClientContext c;
      return stub_->Decide(&c, d, &j);
    });
    next_from_ = e + 1;
  }

  void await_done(const WaitOptions& w) override {
    next_event(
        w,
        [&](const v1::WatchEvent& ev) {
          if (!ev.has_finished()) return false;
          if (ev.finished().state() != v1::DONE) fail("the job " + describe(ev.finished()));
          return true;
        },
        next_from_);
  }

  void fetch_model(std::size_t e) override {
    download(ep_, *stub_, job_, "model-" + std::to_string(e),
             detail::epoch_file(bundle_, "model", e, ".cts"));
  }

  void infer(std::size_t epoch, const std::vector<std::size_t>& rows, const WaitOptions&) override {
    const detail::Meta m = detail::read_meta(bundle_);
    const auto [params_sha, n] = hash_file(bundle_ / "keys" / "params.bin");
    (void)n;
    v1::InferRequest req;
    req.set_job_id(job_);
    req.set_epoch(epoch);
    for (std::size_t b = 0; b < rows.size(); ++b) {
      req.add_rows(rows[b]);
      *req.add_batches() = upload(
          ep_, *stub_, bundle_ / "infer" / ("x-" + std::to_string(b) + ".cts"), v1::INFERENCE_BATCH,
          static_cast<std::uint32_t>(train::features_layout(m.shape, rows[b]).count()), params_sha);
    }
    v1::InferReply rep;
    {
      // Not retried: each call is a new computation on the server.
      grpc::ClientContext c;
      const grpc::Status st = stub_->Infer(&c, req, &rep);
      if (!st.ok()) fail_status("encrypted inference", st);
    }
    if (static_cast<std::size_t>(rep.logits_size()) != rows.size())
      fail("the server answered " + std::to_string(rep.logits_size()) + " batches of logits for " +
           std::to_string(rows.size()));
    for (std::size_t b = 0; b < rows.size(); ++b)
      download(ep_, *stub_, job_, rep.logits(static_cast<int>(b)),
               bundle_ / "infer" / ("logits-" + std::to_string(b) + ".cts"));
  }

 private:
  static std::string describe(const v1::Job& j) {
    return std::string(v1::JobState_Name(j.state())) +
           (j.message().empty() ? "" : ": " + j.message());
  }

  /// Reads watch events until `take` accepts one; reattaches after a cut from epoch `from`
  /// (the service sends everything from there again); heartbeats bound the wait.
  template <class F>
  void next_event(const WaitOptions& w, F&& take, std::size_t from) {
    const auto t0 = std::chrono::steady_clock::now();
    int attempt = 0;
    for (;;) {
      if (!watch_) {
        watch_ctx_ = std::make_unique<grpc::ClientContext>();
        v1::WatchRequest req;
        req.set_job_id(job_);
        req.set_from_epoch(from);
        watch_ = stub_->Watch(watch_ctx_.get(), req);
      }
      v1::WatchEvent ev;
      while (watch_->Read(&ev)) {
        attempt = 0;
        if (take(ev)) return;
        if (w.cancelled && w.cancelled()) fail("cancelled");
        if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() >
            w.timeout_s)
          fail("timed out after " + std::to_string(static_cast<long>(w.timeout_s)) +
               " s waiting for the server");
      }
      const grpc::Status s = watch_->Finish();
      watch_.reset();
      watch_ctx_.reset();
      if (s.ok()) fail("the server ended the watch");
      if (!transient(s) && s.error_code() != StatusCode::CANCELLED) fail_status("watch", s);
      if (attempt++ >= ep_.retries * 4) fail_status("watch (gave up reconnecting)", s);
      pause(attempt);
    }
  }

  Endpoint ep_;
  fs::path bundle_;
  std::string job_;
  std::unique_ptr<v1::Hetal::Stub> stub_;
  std::unique_ptr<grpc::ClientContext> watch_ctx_;
  std::unique_ptr<grpc::ClientReader<v1::WatchEvent>> watch_;
  std::size_t next_from_ = 0;
};

}  // namespace

Submitted submit_bundle(const Endpoint& ep, const std::string& bundle_dir,
                        const Progress& progress) {
  UploadStats st;
  const fs::path bundle(bundle_dir);
  const detail::Meta m = detail::read_meta(bundle);
  auto stub = connect(ep);
  v1::JobSpec spec = detail::spec_of(m);  // the objects' references are added below
  spec.clear_train_rows();
  spec.clear_validation_rows();
  const std::size_t total = 5 + m.train_rows.size() + m.val_rows.size();
  std::size_t done = 0;
  const auto tick = [&] {
    if (progress) progress(++done, total, "objects uploaded");
  };
  const fs::path keys = bundle / "keys";
  *spec.mutable_parameters() = upload(ep, *stub, keys / "params.bin", v1::PARAMETERS, 0, "", &st);
  tick();
  const std::string ps = spec.parameters().sha256();
  *spec.mutable_public_key() = upload(ep, *stub, keys / "public.key", v1::PUBLIC_KEY, 1, ps, &st);
  tick();
  *spec.mutable_relin_key() = upload(ep, *stub, keys / "relin.key", v1::RELIN_KEY, 1, ps, &st);
  tick();
  *spec.mutable_galois_keys() = upload(ep, *stub, keys / "galois.key", v1::GALOIS_KEYS,
                                       galois_count(keys / "galois.key"), ps, &st);
  tick();
  *spec.mutable_bootstrap_keys() = upload(ep, *stub, keys / "bootstrap.key", v1::BOOTSTRAP_KEYS,
                                          galois_count(keys / "bootstrap.key"), ps, &st);
  tick();
  for (std::size_t b = 0; b < m.train_rows.size(); ++b) {
    const auto c = train::features_layout(m.shape, m.train_rows[b]).count() +
                   train::labels_layout(m.shape, m.train_rows[b]).count();
    *spec.add_train_batches() =
        upload(ep, *stub, bundle / "data" / ("train-" + std::to_string(b) + ".cts"),
               v1::TRAIN_BATCH, static_cast<std::uint32_t>(c), ps, &st);
    spec.add_train_rows(m.train_rows[b]);
    tick();
  }
  for (std::size_t b = 0; b < m.val_rows.size(); ++b) {
    const auto c = train::features_layout(m.shape, m.val_rows[b]).count();
    *spec.add_validation_batches() =
        upload(ep, *stub, bundle / "data" / ("val-" + std::to_string(b) + ".cts"),
               v1::VALIDATION_BATCH, static_cast<std::uint32_t>(c), ps, &st);
    spec.add_validation_rows(m.val_rows[b]);
    tick();
  }
  v1::SubmitRequest req;
  *req.mutable_spec() = spec;
  v1::Job job;
  // Not retried: a second Submit would make a second job.
  grpc::ClientContext ctx;
  const grpc::Status status = stub->Submit(&ctx, req, &job);
  if (!status.ok()) fail_status("submit", status);
  return {job.id(), st.objects, st.already_there, st.bytes_sent};
}

std::unique_ptr<ServerLink> grpc_link(const Endpoint& ep, const std::string& bundle_dir,
                                      const std::string& job_id) {
  return std::make_unique<GrpcLink>(ep, bundle_dir, job_id);
}

namespace {
/// GetJob or Cancel, as one line: "RUNNING, 2 epochs done (message)".
std::string job_line(const Endpoint& ep, const std::string& job_id, bool cancel) {
  auto stub = connect(ep);
  v1::JobRef r;
  r.set_job_id(job_id);
  v1::Job j;
  call(ep, cancel ? "cancel" : "status", [&] {
    grpc::ClientContext c;
    return cancel ? stub->Cancel(&c, r, &j) : stub->GetJob(&c, r, &j);
  });
  return std::string(v1::JobState_Name(j.state())) + ", " + std::to_string(j.epochs_done()) +
         " epochs done" + (j.message().empty() ? "" : " (" + j.message() + ")");
}
}  // namespace

std::string job_status(const Endpoint& ep, const std::string& job_id) {
  return job_line(ep, job_id, false);
}
std::string cancel_job(const Endpoint& ep, const std::string& job_id) {
  return job_line(ep, job_id, true);
}

v1::TransferResult cryptotl_forward(const Endpoint& ep, const std::string& bundle_dir) {
  const fs::path bundle(bundle_dir);
  v1::TransferSpec spec;
  detail::read_message(bundle / "transfer.json", spec);
  if (spec.format() != cryptotl::kFormat || spec.version() != cryptotl::kVersion)
    fail((bundle / "transfer.json").string() + ": not a version-1 CryptoTL request");
  auto stub = connect(ep);
  *spec.mutable_parameters() = upload(ep, *stub, bundle / "params.bin", v1::PARAMETERS, 0, "");
  const std::string ps = spec.parameters().sha256();
  *spec.mutable_relin_key() = upload(ep, *stub, bundle / "relin.key", v1::RELIN_KEY, 1, ps);
  *spec.mutable_galois_keys() = upload(ep, *stub, bundle / "galois.key", v1::GALOIS_KEYS,
                                       galois_count(bundle / "galois.key"), ps);
  for (auto& s : *spec.mutable_splits()) {
    cryptotl::check_split_name(s.name());
    *s.mutable_inputs() = upload(ep, *stub, bundle / ("inputs-" + s.name() + ".cts"),
                                 v1::INFERENCE_BATCH, s.ciphertexts(), ps);
  }
  v1::TransferResult r;
  {
    // Not retried: each call is a run of its own.
    grpc::ClientContext ctx;
    const grpc::Status st = stub->Forward(&ctx, spec, &r);
    if (!st.ok()) fail_status("CryptoTL forward", st);
  }
  fs::remove(bundle / "result.json");  // as server_forward: written last
  for (const auto& s : r.splits()) {
    cryptotl::check_split_name(s.name());
    if (s.outputs() != "outputs-" + s.name())
      fail("the service named an output '" + s.outputs() + "'");
    download(ep, *stub, r.job_id(), s.outputs(), bundle / (s.outputs() + ".cts"));
  }
  detail::write_message(bundle / "result.json", r);
  return r;
}

}  // namespace hetal::protocol::grpc_transport
