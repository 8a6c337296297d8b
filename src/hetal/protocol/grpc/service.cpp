#include "hetal/protocol/grpc/service.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <fstream>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "hetal/cryptotl/encrypted_network.h"
#include "hetal/protocol/bundle.h"
#include "hetal/protocol/grpc/tls.h"
#include "hetal/protocol/messages/hetal.grpc.pb.h"

namespace hetal::protocol::grpc_transport {

using detail::json;
using grpc::ServerContext;
using grpc::Status;
using grpc::StatusCode;

namespace {

constexpr std::size_t kChunk = 1 << 20;  // download chunk (the message cap is 4 MiB)

[[noreturn]] void refuse(StatusCode c, const std::string& msg) { throw ServiceError(c, msg); }

/// Runs a handler, turning refusals and errors into statuses (never a crash for a bad peer).
template <class F>
Status guarded(F&& f) {
  try {
    return f();
  } catch (const ServiceError& e) {
    return e.status();
  } catch (const ProtocolError& e) {
    return {StatusCode::FAILED_PRECONDITION, e.what()};
  } catch (const std::exception& e) {
    return {StatusCode::INTERNAL, e.what()};
  }
}

std::string random_id() {
  std::random_device rd;
  static constexpr char hex[] = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 8; ++i) {
    const unsigned v = rd();
    for (int k = 0; k < 4; ++k) s += hex[(v >> (4 * k)) & 15];
  }
  return s;  // 32 hex digits: 128 random bits
}

const char* state_name(v1::JobState s) { return v1::JobState_Name(s).c_str(); }
v1::JobState state_from(const std::string& s) {
  v1::JobState st = v1::JOB_STATE_UNSPECIFIED;
  v1::JobState_Parse(s, &st);
  return st;
}
bool terminal(v1::JobState s) { return s == v1::DONE || s == v1::FAILED || s == v1::CANCELLED; }

struct JobEntry {
  std::string tenant, id;
  fs::path dir;
  std::atomic<bool> cancel{false};
};

class Service final : public v1::Hetal::Service {
 public:
  explicit Service(const ServiceOptions& o) : o_(o), store_(o.data_dir, o.insecure, o.limits) {
    if (!o.cryptotl_model.empty()) {
      try {
        lower_ = nn::load_lower_network(o.cryptotl_model);
      } catch (const std::invalid_argument& e) {
        throw ProtocolError(e.what());
      }
      has_lower_ = true;
    }
    if (o.cryptotl_dp) {  // refused at start-up, not at the first Forward
      if (!has_lower_) throw ProtocolError("--cryptotl-dp-epsilon needs --cryptotl-model");
      try {
        (void)cryptotl_sigma();
      } catch (const std::invalid_argument& e) {
        throw ProtocolError(e.what());
      }
    }
  }

  double cryptotl_sigma() const {
    const auto& d = *o_.cryptotl_dp;
    return hetal::cryptotl::gaussian_sigma(
        d.epsilon, d.delta,
        hetal::cryptotl::output_sensitivity(nn::fuse(lower_),
                                            {d.input_lo, d.input_hi, d.input_radius}));
  }

  void log(const std::string& line) const {
    if (o_.log) {
      o_.log(line);
      return;
    }
    char when[32];
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    std::fprintf(stderr, "%s hetal serve: %s\n", when, line.c_str());
  }

  // ---------------------------------------------------------------- jobs
  fs::path job_dir(const std::string& tenant, const std::string& id) const {
    // Another tenant's id, or one that is not an id at all, is simply not found.
    if (!is_hex(id, 32)) refuse(StatusCode::NOT_FOUND, "no such job");
    const fs::path d = store_.tenant_dir(tenant) / "jobs" / id;
    if (!fs::exists(d / "job.json")) refuse(StatusCode::NOT_FOUND, "no such job");
    return d;
  }

  v1::Job read_job(const fs::path& dir, const std::string& id) const {
    std::ifstream in(dir / "job.json");
    const json j = json::parse(in, nullptr, false);
    v1::Job job;
    job.set_id(id);
    if (j.is_discarded()) {
      job.set_state(v1::FAILED);
      job.set_message("the job's record is unreadable");
      return job;
    }
    job.set_state(state_from(j.value("state", std::string())));
    job.set_message(j.value("message", std::string()));
    std::size_t e = 0;
    while (fs::exists(detail::epoch_file(dir, "val", e, ".cts"))) ++e;
    job.set_epochs_done(e);
    return job;
  }

  /// The job's record (job.json), an empty object when it is missing or unreadable.
  static json record(const fs::path& dir) {
    std::ifstream in(dir / "job.json");
    json j = json::parse(in, nullptr, false);
    return j.is_object() ? j : json::object();
  }
  /// Read, change, write back atomically (one writer at a time).
  void update_record(const fs::path& dir, const std::function<void(json&)>& change) {
    std::lock_guard<std::mutex> lock(state_mutex_);
    json j = record(dir);
    change(j);
    detail::write_text(dir / "job.json", j.dump());
  }
  void write_job(const fs::path& dir, v1::JobState s, const std::string& message) {
    update_record(dir, [&](json& j) {
      j["state"] = state_name(s);
      j["message"] = message;
    });
  }
  void mark_cancel(const fs::path& dir) {
    update_record(dir, [](json& j) { j["cancel_requested"] = true; });
  }
  static bool cancel_requested(const fs::path& dir) {
    return record(dir).value("cancel_requested", false);
  }

  void enqueue(std::shared_ptr<JobEntry> j) {
    {
      std::lock_guard<std::mutex> lock(queue_mutex_);
      entries_[j->tenant + "/" + j->id] = j;
      queue_.push_back(std::move(j));
    }
    queue_cv_.notify_one();
  }

  std::shared_ptr<JobEntry> entry(const std::string& tenant, const std::string& id) {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    auto it = entries_.find(tenant + "/" + id);
    return it == entries_.end() ? nullptr : it->second;
  }

  void worker() {
    for (;;) {
      std::shared_ptr<JobEntry> j;
      {
        std::unique_lock<std::mutex> lock(queue_mutex_);
        queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        j = queue_.front();
        queue_.pop_front();
      }
      try {
        run(*j);
      } catch (const std::exception& e) {  // e.g. a full disk while recording the state
        log("job " + j->id.substr(0, 8) + ": " + e.what() + " (left to resume at the next start)");
      }
    }
  }

  void run(JobEntry& j) {
    const std::string who = "job " + j.id.substr(0, 8) + " (tenant " + j.tenant.substr(0, 8) + ")";
    if (j.cancel || cancel_requested(j.dir)) {
      write_job(j.dir, v1::CANCELLED, "cancelled by the client before it started");
      return;
    }
    write_job(j.dir, v1::RUNNING, "");
    log(who + ": training");
    WaitOptions w;
    w.timeout_s = o_.decision_timeout_s;
    w.decision_timeout_stops = true;
    w.cancelled = [&] { return j.cancel.load() || stopping_.load(); };
    const auto t0 = std::chrono::steady_clock::now();
    bool started = false;
    w.progress = [&](std::size_t done, std::size_t total, const std::string&) {
      if (started) return;  // once: the keys and data are loaded, steps begin
      started = true;
      char line[160];
      std::snprintf(line, sizeof line, ": set up in %.1f s, training from step %zu of %zu",
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                    done + 1, total);
      log(who + line);
    };
    try {
      // resume: from the last checkpoint if there is one (a restarted service), else fresh.
      const ServerReport r = server_train(j.dir.string(), o_.insecure, true, w,
                                          lower_network_for(detail::read_meta(j.dir)));
      std::string msg = std::to_string(r.resumed_from + r.epochs) + " epochs";
      if (r.decision_timed_out)
        msg += "; stopped: no decision within " +
               std::to_string(static_cast<long>(o_.decision_timeout_s)) + " s";
      write_job(j.dir, v1::DONE, msg);
      log(who + ": done, " + msg);
    } catch (const std::exception& e) {
      if (j.cancel) {
        write_job(j.dir, v1::CANCELLED, "cancelled by the client");
        log(who + ": cancelled");
      } else if (stopping_) {
        log(who + ": left to resume at the next start");  // state stays RUNNING
      } else {
        write_job(j.dir, v1::FAILED, e.what());
        log(who + ": failed: " + e.what());
      }
    }
  }

  /// Jobs a killed or stopped service left unfinished: queued again, to resume.
  void recover() {
    const fs::path tenants = store_.root() / "tenants";
    for (const auto& t : fs::directory_iterator(tenants)) {
      const fs::path jobs = t.path() / "jobs";
      if (!fs::is_directory(jobs)) continue;
      for (const auto& d : fs::directory_iterator(jobs)) {
        const std::string id = d.path().filename().string();
        if (!is_hex(id, 32) || !fs::exists(d.path() / "job.json")) continue;
        const v1::Job job = read_job(d.path(), id);
        if (terminal(job.state())) continue;
        if (cancel_requested(d.path())) {
          write_job(d.path(), v1::CANCELLED, "cancelled by the client");
          continue;
        }
        auto e = std::make_shared<JobEntry>();
        e->tenant = t.path().filename().string();
        e->id = id;
        e->dir = d.path();
        log("job " + id.substr(0, 8) + ": resuming after a restart (" +
            std::to_string(job.epochs_done()) + " epochs done)");
        enqueue(std::move(e));
      }
    }
  }

  void start_workers() {
    for (std::size_t i = 0; i < std::max<std::size_t>(1, o_.max_running); ++i)
      workers_.emplace_back([this] { worker(); });
  }
  void stop_workers() {
    stopping_ = true;
    queue_cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

  std::size_t active_jobs(const std::string& tenant) const {
    std::size_t n = 0;
    const fs::path jobs = store_.tenant_dir(tenant) / "jobs";
    std::error_code ec;
    for (const auto& d : fs::directory_iterator(jobs, ec)) {
      const std::string id = d.path().filename().string();
      if (is_hex(id, 32) && !terminal(read_job(d.path(), id).state())) ++n;
    }
    return n;
  }

  // ---------------------------------------------------------------- RPCs
  /// The authenticated tenant of a call, holding one of its in-flight call slots: a tenant
  /// cannot take all of the server's threads (watches and streams hold one each).
  struct Caller {
    Service* service;
    std::string name;
    Caller(Service* s, std::string n) : service(s), name(std::move(n)) {}
    Caller(const Caller&) = delete;
    Caller& operator=(const Caller&) = delete;
    ~Caller() {
      std::lock_guard<std::mutex> lock(service->calls_mutex_);
      if (--service->calls_[name] == 0) service->calls_.erase(name);
    }
  };
  std::unique_ptr<Caller> enter(ServerContext* ctx) {
    const auto auth = ctx->auth_context();
    const auto ids =
        auth ? auth->FindPropertyValues(kTenantProperty) : std::vector<grpc::string_ref>{};
    if (ids.empty())
      refuse(StatusCode::UNAUTHENTICATED, "a client certificate with a common name is required");
    std::string t = Store::tenant_of(std::string(ids.front().data(), ids.front().size()));
    std::lock_guard<std::mutex> lock(calls_mutex_);
    if (calls_[t] >= kCallsPerTenant)
      refuse(StatusCode::RESOURCE_EXHAUSTED,
             "the tenant has " + std::to_string(kCallsPerTenant) + " calls in flight (the limit)");
    ++calls_[t];
    return std::make_unique<Caller>(this, std::move(t));
  }

  Status Write(ServerContext* ctx, grpc::ServerReader<v1::WriteRequest>* reader,
               v1::WriteResponse* resp) override {
    return guarded([&] {
      const auto caller = enter(ctx);
      const std::string& t = caller->name;
      v1::WriteRequest req;
      if (!reader->Read(&req)) refuse(StatusCode::INVALID_ARGUMENT, "an empty upload stream");
      if (!req.has_object())
        refuse(StatusCode::INVALID_ARGUMENT, "the first message of an upload names the object");
      Store::Upload up(store_, t, req.object());
      const std::string name = req.object().SerializeAsString();
      bool more = true;
      while (more) {
        if (req.has_object() && req.object().SerializeAsString() != name)
          refuse(StatusCode::INVALID_ARGUMENT, "an upload stream carries one object");
        up.write(req.write_offset(), req.data());
        if (req.finish_write()) {
          up.finish();
          break;
        }
        more = reader->Read(&req);
      }
      up.flush();
      resp->set_committed_size(up.committed());
      return Status::OK;
    });
  }

  Status QueryWriteStatus(ServerContext* ctx, const v1::QueryWriteStatusRequest* req,
                          v1::QueryWriteStatusResponse* resp) override {
    return guarded([&] {
      const auto caller = enter(ctx);
      const auto [n, done] = store_.query(caller->name, req->object());
      resp->set_committed_size(n);
      resp->set_complete(done);
      return Status::OK;
    });
  }

  Status Submit(ServerContext* ctx, const v1::SubmitRequest* req, v1::Job* resp) override {
    return guarded([&] {
      const auto caller = enter(ctx);
      const std::string& t = caller->name;
      const v1::JobSpec& s = req->spec();
      std::lock_guard<std::mutex> one_submit(submit_mutex_);  // the job quota's check and use
      if (active_jobs(t) >= o_.limits.tenant_jobs)
        refuse(StatusCode::RESOURCE_EXHAUSTED, "the tenant has " +
                                                   std::to_string(o_.limits.tenant_jobs) +
                                                   " jobs queued or running (the quota)");
      const auto need = [&](const v1::ObjectRef& r, v1::ObjectKind k, const char* what) {
        if (r.kind() != k) refuse(StatusCode::INVALID_ARGUMENT, std::string(what) + ": wrong kind");
        if (k != v1::PARAMETERS && r.parameters_sha256() != s.parameters().sha256())
          refuse(StatusCode::INVALID_ARGUMENT,
                 std::string(what) + " was made under other parameters");
        return store_.object(t, r);
      };
      const fs::path params = need(s.parameters(), v1::PARAMETERS, "parameters");
      const auto ctxp = store_.context(t, s.parameters().sha256());  // the security policy
      const detail::Meta m = detail::meta_from_spec(s, "the job spec");
      lower_network_for(m);  // before anything is linked in
      if (!is_hex(m.key_id, 64)) refuse(StatusCode::INVALID_ARGUMENT, "key_id: 64 hex digits");
      if (m.shape.slots != ctxp->max_slots())
        refuse(StatusCode::INVALID_ARGUMENT, "shape.slots does not match the parameters");
      if (static_cast<std::size_t>(s.train_batches_size()) != m.train_rows.size() ||
          static_cast<std::size_t>(s.validation_batches_size()) != m.val_rows.size())
        refuse(StatusCode::INVALID_ARGUMENT, "one batch object per batch size is needed");
      // Build the job's bundle under a temporary name, then rename: a job is there whole.
      const std::string id = random_id();
      const fs::path jobs = store_.tenant_dir(t) / "jobs", dir = jobs / id,
                     tmp = jobs / (id + ".new");
      fs::create_directories(tmp / "keys");
      fs::create_directories(tmp / "data");
      try {
        fs::create_hard_link(params, tmp / "keys" / "params.bin");
        fs::create_hard_link(need(s.public_key(), v1::PUBLIC_KEY, "public key"),
                             tmp / "keys" / "public.key");
        fs::create_hard_link(need(s.relin_key(), v1::RELIN_KEY, "relinearisation key"),
                             tmp / "keys" / "relin.key");
        fs::create_hard_link(need(s.galois_keys(), v1::GALOIS_KEYS, "Galois keys"),
                             tmp / "keys" / "galois.key");
        fs::create_hard_link(need(s.bootstrap_keys(), v1::BOOTSTRAP_KEYS, "bootstrapping keys"),
                             tmp / "keys" / "bootstrap.key");
        for (int b = 0; b < s.train_batches_size(); ++b)
          fs::create_hard_link(need(s.train_batches(b), v1::TRAIN_BATCH, "a training batch"),
                               tmp / "data" / ("train-" + std::to_string(b) + ".cts"));
        for (int b = 0; b < s.validation_batches_size(); ++b)
          fs::create_hard_link(
              need(s.validation_batches(b), v1::VALIDATION_BATCH, "a validation batch"),
              tmp / "data" / ("val-" + std::to_string(b) + ".cts"));
        detail::write_message(tmp / "meta.json", detail::spec_of(m));
        const detail::Meta back = detail::read_meta(tmp);  // the same checks as the file mode
        for (std::size_t b = 0; b < back.train_rows.size(); ++b)
          if (s.train_batches(static_cast<int>(b)).count() !=
              train::features_layout(back.shape, back.train_rows[b]).count() +
                  train::labels_layout(back.shape, back.train_rows[b]).count())
            refuse(StatusCode::INVALID_ARGUMENT,
                   "training batch " + std::to_string(b) + " has the wrong ciphertext count");
        for (std::size_t b = 0; b < back.val_rows.size(); ++b)
          if (s.validation_batches(static_cast<int>(b)).count() !=
              train::features_layout(back.shape, back.val_rows[b]).count())
            refuse(StatusCode::INVALID_ARGUMENT,
                   "validation batch " + std::to_string(b) + " has the wrong ciphertext count");
        detail::write_text(tmp / "job.json",
                           json{{"state", state_name(v1::QUEUED)}, {"message", ""}}.dump());
        fs::rename(tmp, dir);
      } catch (...) {
        std::error_code ec;
        fs::remove_all(tmp, ec);
        throw;
      }
      auto e = std::make_shared<JobEntry>();
      e->tenant = t;
      e->id = id;
      e->dir = dir;
      log("job " + id.substr(0, 8) + " (tenant " + t.substr(0, 8) + "): submitted, " +
          std::to_string(m.train_rows.size()) + " batches, up to " +
          std::to_string(m.cfg.max_epochs) + " epochs");
      enqueue(e);
      *resp = read_job(dir, id);
      return Status::OK;
    });
  }

  Status GetJob(ServerContext* ctx, const v1::JobRef* req, v1::Job* resp) override {
    return guarded([&] {
      const auto caller = enter(ctx);
      *resp = read_job(job_dir(caller->name, req->job_id()), req->job_id());
      return Status::OK;
    });
  }

  Status Watch(ServerContext* ctx, const v1::WatchRequest* req,
               grpc::ServerWriter<v1::WatchEvent>* writer) override {
    return guarded([&] {
      const auto caller = enter(ctx);
      const fs::path dir = job_dir(caller->name, req->job_id());
      std::size_t e = req->from_epoch();
      auto last = std::chrono::steady_clock::now();
      while (!ctx->IsCancelled() && !stopping_) {
        if (fs::exists(detail::epoch_file(dir, "val", e, ".cts"))) {
          v1::WatchEvent ev;
          ev.mutable_epoch()->set_epoch(e);
          ev.mutable_epoch()->set_validation_logits("val-" + std::to_string(e));
          ev.mutable_epoch()->set_model("model-" + std::to_string(e));
          if (!writer->Write(ev)) return Status(StatusCode::CANCELLED, "the watcher left");
          ++e;
          last = std::chrono::steady_clock::now();
          continue;
        }
        const v1::Job job = read_job(dir, req->job_id());
        if (terminal(job.state())) {
          if (fs::exists(detail::epoch_file(dir, "val", e, ".cts"))) continue;
          v1::WatchEvent ev;
          *ev.mutable_finished() = job;
          writer->Write(ev);
          return Status::OK;
        }
        if (std::chrono::duration<double>(std::chrono::steady_clock::now() - last).count() >=
            o_.heartbeat_s) {
          v1::WatchEvent ev;
          ev.mutable_heartbeat()->set_unix_seconds(static_cast<std::uint64_t>(std::time(nullptr)));
          if (!writer->Write(ev)) return Status(StatusCode::CANCELLED, "the watcher left");
          last = std::chrono::steady_clock::now();
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      return Status(StatusCode::UNAVAILABLE, "the server is stopping; watch again");
    });
  }

  Status Decide(ServerContext* ctx, const v1::Decision* req, v1::Job* resp) override {
    return guarded([&] {
      const auto caller = enter(ctx);
      const fs::path dir = job_dir(caller->name, req->job_id());
      const v1::Job job = read_job(dir, req->job_id());
      if (req->epoch() >= job.epochs_done())
        refuse(StatusCode::FAILED_PRECONDITION,
               "epoch " + std::to_string(req->epoch() + 1) + " has not finished");
      const fs::path f = detail::epoch_file(dir, "decision", req->epoch(), ".json");
      v1::Decision d;
      d.set_epoch(req->epoch());
      d.set_stop(req->stop());
      d.set_abort(req->abort().substr(0, 512));
      std::lock_guard<std::mutex> lock(decision_mutex_);
      if (fs::exists(f)) {
        v1::Decision old;
        detail::read_message(f, old);
        if (old.stop() != d.stop() || old.abort() != d.abort())
          refuse(StatusCode::ALREADY_EXISTS,
                 "epoch " + std::to_string(req->epoch() + 1) + " was already answered otherwise");
      } else {
        if (terminal(job.state())) refuse(StatusCode::FAILED_PRECONDITION, "the job has ended");
        detail::write_message(f, d);
      }
      *resp = read_job(dir, req->job_id());
      return Status::OK;
    });
  }

  Status Cancel(ServerContext* ctx, const v1::JobRef* req, v1::Job* resp) override {
    return guarded([&] {
      const auto caller = enter(ctx);
      const std::string& t = caller->name;
      const fs::path dir = job_dir(t, req->job_id());
      if (!terminal(read_job(dir, req->job_id()).state())) {
        mark_cancel(dir);  // survives a restart: recover() does not run it again
        if (auto e = entry(t, req->job_id())) e->cancel = true;
        // Wait briefly for the worker to record it (at most one training step otherwise).
        for (int i = 0; i < 20 && !terminal(read_job(dir, req->job_id()).state()); ++i)
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      *resp = read_job(dir, req->job_id());
      return Status::OK;
    });
  }

  /// A job's output by the name the service gave it (never a client-made path).
  static fs::path output(const fs::path& dir, const std::string& name) {
    static const std::regex epoch_re("(val|model)-([0-9]{1,6})"),
        infer_re("infer-([0-9a-f]{32})-([0-9]{1,6})");
    std::smatch m;
    if (std::regex_match(name, m, epoch_re))
      return detail::epoch_file(dir, m[1].str() == "val" ? "val" : "model", std::stoul(m[2].str()),
                                ".cts");
    if (std::regex_match(name, m, infer_re))
      return dir / "infer" / m[1].str() / ("logits-" + m[2].str() + ".cts");
    static const std::regex outputs_re("outputs-[a-z0-9_-]{1,32}");  // a CryptoTL forward's
    if (std::regex_match(name, outputs_re) && fs::exists(dir / "transfer.json"))
      return dir / (name + ".cts");
    refuse(StatusCode::INVALID_ARGUMENT, "no output is named '" + name.substr(0, 64) + "'");
  }

  Status Read(ServerContext* ctx, const v1::ReadRequest* req,
              grpc::ServerWriter<v1::ReadResponse>* writer) override {
    return guarded([&] {
      const auto caller = enter(ctx);
      const fs::path f = output(job_dir(caller->name, req->job_id()), req->name());
      std::ifstream in(f, std::ios::binary);
      if (!in) refuse(StatusCode::NOT_FOUND, "'" + req->name() + "' is not ready");
      const auto size = fs::file_size(f);
      if (req->read_offset() > size) refuse(StatusCode::OUT_OF_RANGE, "read_offset past the end");
      in.seekg(static_cast<std::streamoff>(req->read_offset()));
      std::string buf(kChunk, '\0');
      v1::ReadResponse r;
      while (in && !ctx->IsCancelled()) {
        in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
        if (in.gcount() <= 0) break;
        r.set_data(buf.data(), static_cast<std::size_t>(in.gcount()));
        if (!writer->Write(r)) return Status(StatusCode::CANCELLED, "the reader left");
      }
      if (in.bad()) refuse(StatusCode::INTERNAL, "reading '" + req->name() + "' failed");
      if (ctx->IsCancelled()) return Status(StatusCode::CANCELLED, "cancelled");
      return Status::OK;
    });
  }

  Status Infer(ServerContext* ctx, const v1::InferRequest* req, v1::InferReply* resp) override {
    return guarded([&] {
      const auto caller = enter(ctx);
      const std::string& t = caller->name;
      const fs::path dir = job_dir(t, req->job_id());
      if (req->batches_size() == 0 || req->batches_size() != req->rows_size() ||
          req->batches_size() > 4096)
        refuse(StatusCode::INVALID_ARGUMENT, "one row count per batch, 1 to 4096 batches");
      if (req->epoch() >= read_job(dir, req->job_id()).epochs_done())
        refuse(StatusCode::FAILED_PRECONDITION,
               "epoch " + std::to_string(req->epoch() + 1) + " has no model yet");
      const std::string rid = random_id();
      const fs::path idir = dir / "infer" / rid;
      fs::create_directories(idir);
      std::vector<std::size_t> rows(req->rows().begin(), req->rows().end());
      std::vector<std::string> in, out;
      for (int b = 0; b < req->batches_size(); ++b) {
        const fs::path x = idir / ("x-" + std::to_string(b) + ".cts");
        const auto& ref = req->batches(b);
        if (ref.kind() != v1::INFERENCE_BATCH)
          refuse(StatusCode::INVALID_ARGUMENT, "an inference batch has the wrong kind");
        fs::create_hard_link(store_.object(t, ref), x);
        in.push_back(x.string());
        out.push_back((idir / ("logits-" + std::to_string(b) + ".cts")).string());
        resp->add_logits("infer-" + rid + "-" + std::to_string(b));
      }
      log("job " + req->job_id().substr(0, 8) + ": inference on " + std::to_string(rows.size()) +
          " batches");
      // At most --max-running inferences at once (each loads the job's keys), beside training.
      const auto slot = evaluation_slot(ctx);
      if (!slot) {
        fs::remove_all(idir);
        return Status(StatusCode::CANCELLED, "cancelled while queued");
      }
      try {
        server_infer_batches(dir.string(), o_.insecure, req->epoch(), rows, in, out, {},
                             lower_network_for(detail::read_meta(dir)));
      } catch (...) {
        std::error_code ec;
        fs::remove_all(idir, ec);  // nothing half-made stays
        throw;
      }
      return Status::OK;
    });
  }

  // CryptoTL (issue 15): the service's lower network on a tenant's uploaded inputs, run at once
  // as a job of its own (tenants/<t>/jobs/<id>: transfer.json, the outputs, then job.json DONE),
  // so that Read serves the outputs and the quota counts them.
  Status Forward(ServerContext* ctx, const v1::TransferSpec* req,
                 v1::TransferResult* resp) override {
    return guarded([&] {
      const auto caller = enter(ctx);
      const std::string& t = caller->name;
      if (!has_lower_)
        refuse(StatusCode::FAILED_PRECONDITION,
               "this service has no CryptoTL model (hetal server serve --cryptotl-model)");
      if (req->splits_size() == 0 || req->splits_size() > 64)
        refuse(StatusCode::INVALID_ARGUMENT, "1 to 64 splits");
      auto object = [&](const v1::ObjectRef& ref, v1::ObjectKind kind, const char* what) {
        if (ref.kind() != kind)
          refuse(StatusCode::INVALID_ARGUMENT, std::string(what) + " has the wrong kind");
        if (kind != v1::PARAMETERS && ref.parameters_sha256() != req->parameters().sha256())
          refuse(StatusCode::INVALID_ARGUMENT,
                 std::string(what) + " was made under other parameters");
        return store_.object(t, ref);
      };
      cryptotl::ForwardFiles files{
          object(req->parameters(), v1::PARAMETERS, "the parameters"),
          object(req->relin_key(), v1::RELIN_KEY, "the relinearization key"),
          object(req->galois_keys(), v1::GALOIS_KEYS, "the Galois keys"),
          {}};
      std::set<std::string> names;
      const std::string id = random_id();
      const fs::path dir = store_.tenant_dir(t) / "jobs" / id;
      for (const auto& sp : req->splits()) {
        cryptotl::check_split_name(sp.name());
        if (!names.insert(sp.name()).second)
          refuse(StatusCode::INVALID_ARGUMENT, "split '" + sp.name() + "' twice");
        files.splits.push_back({sp.name(), sp.rows(),
                                object(sp.inputs(), v1::INFERENCE_BATCH, "a split's inputs"),
                                dir / ("outputs-" + sp.name() + ".cts")});
      }
      if (store_.tenant_bytes(t) > store_.limits().tenant_bytes)
        refuse(StatusCode::RESOURCE_EXHAUSTED, "the tenant's storage quota is used up");
      const auto slot = evaluation_slot(ctx);
      if (!slot) return Status(StatusCode::CANCELLED, "cancelled while queued");
      fs::create_directories(dir);
      try {
        detail::write_message(dir / "transfer.json", *req);
        cryptotl::ForwardOptions fo;
        fo.insecure = o_.insecure;
        fo.dp = o_.cryptotl_dp;
        *resp = cryptotl::run_forward(lower_, *req, files, fo);
        resp->set_job_id(id);
        for (auto& sp : *resp->mutable_splits()) sp.set_outputs("outputs-" + sp.name());
        update_record(dir, [](json& j) {
          j["state"] = state_name(v1::DONE);
          j["message"] = "CryptoTL forward";
        });
      } catch (...) {
        std::error_code ec;
        fs::remove_all(dir, ec);  // nothing half-made stays
        throw;
      }
      log("cryptotl " + id.substr(0, 8) + ": lower network on " +
          std::to_string(req->splits_size()) + " splits in " + std::to_string(resp->seconds()) +
          " s");
      return Status::OK;
    });
  }

  std::atomic<bool> stopping_{false};
  static constexpr int kCallsPerTenant = 32;

 private:
  std::mutex calls_mutex_, submit_mutex_, infer_mutex_;
  std::map<std::string, int> calls_;
  std::condition_variable infer_cv_;
  std::size_t infer_running_ = 0;
  ServiceOptions o_;
  Store store_;
  std::mutex queue_mutex_, state_mutex_, decision_mutex_;
  std::condition_variable queue_cv_;
  std::deque<std::shared_ptr<JobEntry>> queue_;
  std::map<std::string, std::shared_ptr<JobEntry>> entries_;
  std::vector<std::thread> workers_;
  nn::LowerNetwork lower_;
  bool has_lower_ = false;

  /// The model file a job on the service's lower network (meta.cfg.lower_network_dim) trains
  /// and infers with; empty for other jobs. Refused: no model, another dimension, and DP on
  /// the service's outputs (a head trained on them under encryption, and its inference, would
  /// answer on the network's outputs without the noise Forward adds).
  std::string lower_network_for(const detail::Meta& m) const {
    const std::size_t d = m.cfg.lower_network_dim;
    if (!d) return {};
    if (!has_lower_)
      refuse(StatusCode::FAILED_PRECONDITION,
             "the job trains on the service's lower network, and it has none (--cryptotl-model)");
    if (o_.cryptotl_dp)
      refuse(StatusCode::FAILED_PRECONDITION,
             "the service adds differential-privacy noise to its lower network's outputs, which "
             "a head trained on them under encryption would bypass: it takes no such jobs");
    if (lower_.dim != d)
      refuse(StatusCode::INVALID_ARGUMENT,
             "the service's lower network takes " + std::to_string(lower_.dim) +
                 " features, the job's data has " + std::to_string(d));
    return o_.cryptotl_model;
  }

  // One of --max-running evaluation slots (inference, CryptoTL forward); released when the
  // returned holder goes; null if the call was cancelled (or the service stops) while waiting.
  std::shared_ptr<void> evaluation_slot(ServerContext* ctx) {
    std::unique_lock<std::mutex> lock(infer_mutex_);
    while (infer_running_ >= std::max<std::size_t>(1, o_.max_running)) {
      if (ctx->IsCancelled() || stopping_) return nullptr;
      infer_cv_.wait_for(lock, std::chrono::milliseconds(200));
    }
    ++infer_running_;
    return std::shared_ptr<void>(this, [](Service* s) {
      {
        std::lock_guard<std::mutex> l(s->infer_mutex_);
        --s->infer_running_;
      }
      s->infer_cv_.notify_one();
    });
  }
};

}  // namespace

int serve(const ServiceOptions& o) {
  if (o.data_dir.empty()) throw std::invalid_argument("serve: --data is required");
  // SIGINT / SIGTERM are taken by sigwait below, in this thread only.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  Service svc(o);
  svc.recover();  // before any Submit can come in: a job is queued once
  grpc::ServerBuilder b;
  int port = 0;
  b.AddListeningPort(o.listen, server_credentials(o.ca_file, o.cert_file, o.key_file), &port);
  b.RegisterService(&svc);
  b.SetMaxReceiveMessageSize(kMaxMessageBytes);
  b.SetMaxSendMessageSize(kMaxMessageBytes);
  b.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 64);
  b.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Pings of its own: a client cut off without a FIN is noticed in ~80 s (its upload's lock
  // on the object is then released), not after TCP's hours.
  b.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60000);
  b.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
  b.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 20000);
  b.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  grpc::ResourceQuota quota("hetal-serve");
  quota.SetMaxThreads(128);
  quota.Resize(std::size_t{1} << 30);
  b.SetResourceQuota(quota);
  std::unique_ptr<grpc::Server> server = b.BuildAndStart();
  if (!server || port == 0) {
    std::fprintf(stderr, "hetal: error: cannot listen on %s\n", o.listen.c_str());
    return 1;
  }
  if (!o.port_file.empty()) detail::write_text(o.port_file, std::to_string(port) + "\n");
  svc.log("listening on port " + std::to_string(port) + " (mutual TLS), data in " + o.data_dir +
          (o.insecure ? ", insecure parameters accepted" : ""));
  svc.start_workers();
  int sig = 0;
  sigwait(&sigs, &sig);
  svc.log(std::string("stopping (") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
          "): unfinished jobs resume at the next start");
  svc.stopping_ = true;
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  svc.stop_workers();
  return 0;
}

}  // namespace hetal::protocol::grpc_transport
