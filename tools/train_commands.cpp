#include "train_commands.h"

#include <omp.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli_util.h"
#include "feature_commands.h"
#include "hetal/ckks/serialization.h"
#include "hetal/protocol/grpc/client_link.h"
#include "hetal/protocol/grpc/store.h"
#include "hetal/protocol/protocol.h"
#include "hetal/train/data_io.h"
#include "hetal/train/datasets.h"
#include "serve_command.h"

extern char** environ;

namespace hetal::cli {

namespace fs = std::filesystem;

namespace {
/// Raw (unnormalised) rows: a built-in set's pixels, or features and labels from files (a
/// folder written by `hetal client extract` stands for its features.npy / labels.npy).
train::Dataset load_data(const std::string& dataset, const std::string& split,
                         const std::string& features, const std::string& labels,
                         std::size_t classes, std::size_t limit) {
  train::Dataset d;
  if (!dataset.empty()) {
    d = train::load_builtin(dataset, split);
  } else {
    std::string xf = features, yf = labels;
    if (!xf.empty() && fs::is_directory(xf)) {
      if (yf.empty()) yf = (fs::path(xf) / "labels.npy").string();
      xf = (fs::path(xf) / "features.npy").string();
    }
    if (xf.empty() || yf.empty())
      throw CLI::ValidationError("data",
                                 "give --dataset, or --features and --labels (or "
                                 "--features FOLDER made by `hetal client extract`)");
    d.x = train::load_matrix(xf);
    d.y = train::load_labels(yf);
    if (d.y.size() != d.x.rows)
      throw std::invalid_argument(yf + " has " + std::to_string(d.y.size()) + " labels, " + xf +
                                  " has " + std::to_string(d.x.rows) + " rows");
    std::size_t mx = 0;
    for (auto v : d.y) mx = std::max(mx, v);
    d.classes = classes ? classes : mx + 1;
  }
  if (limit && limit < d.x.rows) {
    d.x.rows = limit;
    d.x.data.resize(limit * d.x.cols);
    d.y.resize(limit);
  }
  d.validate();
  return d;
}

void write_file(const std::string& path, const std::string& text) {
  ckks::detail::write_file_atomically(path, false, [&](std::ostream& out) { out << text; });
}

void write_model_csv(const std::string& path, const matrix::Matrix& w) {
  std::string s = "# hetal model: rows = classes, columns = features then bias\n";
  char buf[40];
  for (std::size_t r = 0; r < w.rows; ++r) {
    for (std::size_t c = 0; c < w.cols; ++c) {
      std::snprintf(buf, sizeof buf, "%s%.9g", c ? "," : "", w(r, c));
      s += buf;
    }
    s += "\n";
  }
  write_file(path, s);
}

/// This executable as a child process (the server role of the demo).
struct Child {
  pid_t pid = -1;
  int status = 0;
  bool finished = false;
  explicit Child(const std::vector<std::string>& args) {
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
  bool alive() {
    if (finished) return false;
    if (waitpid(pid, &status, WNOHANG) == pid) finished = true;
    return !finished;
  }
  int wait() {
    if (!finished && waitpid(pid, &status, 0) == pid) finished = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  /// The client side failed while the server still runs: give it a few seconds to finish (an
  /// aborted run's server exits by itself), then stop it, so that no orphan waits for hours.
  ~Child() {
    for (int i = 0; i < 100 && alive(); ++i) usleep(100000);
    if (alive()) {
      kill(pid, SIGTERM);
      wait();
    }
  }
};

/// `hetal [--insecure] server <command> --bundle <bundle>` as a child process (the demo's
/// server role over the directory transport).
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
}  // namespace

struct TrainingCommands::Impl {
  const bool& insecure;
  CLI::App *reference = nullptr, *client = nullptr, *c_keygen = nullptr, *c_encrypt = nullptr,
           *c_watch = nullptr, *c_decrypt = nullptr, *c_predict = nullptr, *server = nullptr,
           *s_train = nullptr, *s_infer = nullptr, *demo = nullptr, *c_status = nullptr,
           *c_cancel = nullptr;
  protocol::grpc_transport::Endpoint endpoint;  // --server: the network transport
  ServeCommand serve;
  std::string client_dir = "hetal-client", bundle_dir = "hetal-bundle", dataset, features_file,
              labels_file, out, plot, report, optimizer = "nesterov", description,
              work = "hetal-demo", norm = "auto", hyper = "mnist", test_features_file,
              test_labels_file, transport = "grpc";
  ImageFeatureChoice choice;
  bool pixels = false;
  protocol::TrainConfig cfg;
  std::size_t features = 0, classes = 0, limit = 0, test_limit = 0;
  bool resume = false, encrypted = false;
  double timeout = 6 * 3600;

  explicit Impl(const bool& ins) : insecure(ins) {}

  void add_config(CLI::App* c) {
    c->add_option("--preset", cfg.preset, "parameters: B16-H192 (128-bit), TB13-INSECURE")
        ->capture_default_str();
    c->add_option("--hyper", hyper,
                  "HETAL's hyper-parameters of a data set (lr, batch, epochs; explicit options "
                  "win): mnist, cifar10, facemask, dermamnist, snips")
        ->capture_default_str();
    c->add_option("--batch", cfg.batch, "mini-batch size")->capture_default_str();
    c->add_option("--lr", cfg.learning_rate, "learning rate")->capture_default_str();
    c->add_option("--optimizer", optimizer, "nesterov or gd")->capture_default_str();
    c->add_option("--epochs", cfg.max_epochs, "maximum epochs (demo default: 2)")
        ->capture_default_str();
    c->add_option("--patience", cfg.patience, "early-stopping patience (0: off)")
        ->capture_default_str();
    c->add_option("--seed", cfg.seed, "split and batch-order seed")->capture_default_str();
    c->add_option("--weight-bound", cfg.weight_bound, "bound on |W| for bootstrapping")
        ->capture_default_str();
  }
  void add_data(CLI::App* c, bool with_limit) {
    c->add_option("--dataset", dataset,
                  "built-in images: mnist or fashion-mnist (MobileNetV2 features, or --pixels)");
    c->add_flag("--pixels", pixels, "with --dataset: raw pixels instead of pre-trained features");
    c->add_option("--features", features_file,
                  "features (.npy or .csv, n x d; or a folder from `hetal client extract`)");
    c->add_option("--labels", labels_file, "labels (.npy or .csv, n)");
    c->add_option("--classes", classes, "number of classes (default: max label + 1)");
    if (with_limit) c->add_option("--limit", limit, "use only the first n rows (0: all)");
    add_norm(c);
    choice.add_options(c);
  }
  void add_norm(CLI::App* c) {
    c->add_option("--normalize", norm,
                  "feature normalisation: standard (z-scores fitted on the training rows), l2 "
                  "(unit rows), none; auto: l2 for raw pixels, standard otherwise")
        ->capture_default_str();
  }
  void add_test_data(CLI::App* c) {
    c->add_option("--test-features", test_features_file,
                  "held-out test features (.npy, .csv or an extract folder; with --features)");
    c->add_option("--test-labels", test_labels_file, "held-out test labels (.npy or .csv)");
  }
  train::Normalization normalization() const {
    if (norm == "auto")
      return pixels && !dataset.empty() ? train::Normalization::l2 : train::Normalization::standard;
    return train::normalization_from(norm);
  }
  /// Raw rows of a split: --dataset (pre-trained features extracted and cached, or --pixels)
  /// or --features / --labels (or the test files for split "test" when given).
  train::Dataset raw(const std::string& split, std::size_t rows) const {
    if (!dataset.empty() && !pixels) {
      const fs::path dir = builtin_image_features(dataset, split, rows, choice);
      return load_data("", split, dir.string(), "", 10, rows);
    }
    if (!dataset.empty()) return load_data(dataset, split, "", "", 0, rows);
    if (split == "test" && !test_features_file.empty())
      return load_data("", split, test_features_file, test_labels_file, classes, rows);
    return load_data("", split, features_file, labels_file, classes, rows);
  }
  /// The held-out test set: the built-in set's test split, or --test-features; none (zero
  /// rows) when neither is given.
  train::Dataset test_data(std::size_t train_classes, const train::FeatureScaler& scaler) const {
    if (dataset.empty() && test_features_file.empty()) return {};
    train::Dataset t = raw("test", test_limit);
    if (t.classes < train_classes) t.classes = train_classes;
    scaler.apply(t.x);
    return t;
  }
  void add_dirs(CLI::App* c) {
    c->add_option("--client", client_dir, "client's private directory (secret key)")
        ->capture_default_str();
    c->add_option("--bundle", bundle_dir, "shared bundle directory")->capture_default_str();
    add_network(c);
  }
  void add_network(CLI::App* c) {
    c->add_option("--server", endpoint.server,
                  "HOST:PORT of `hetal server serve` (in place of --bundle; the client's copy "
                  "of the bundle is then CLIENT/outbox)");
    c->add_option("--ca", endpoint.ca_file, "with --server: CA certificate (PEM)");
    c->add_option("--cert", endpoint.cert_file, "with --server: the client's certificate (PEM)");
    c->add_option("--key", endpoint.key_file, "with --server: the client's private key (PEM)");
  }
  bool remote() const { return !endpoint.server.empty(); }
  /// The local bundle: the shared directory, or the client's copy with --server.
  std::string local_bundle() const {
    return remote() ? (fs::path(client_dir) / "outbox").string() : bundle_dir;
  }
  std::string job_id() const {
    const fs::path p = fs::path(client_dir) / "job.txt";
    std::ifstream in(p);
    std::string id;
    if (!(in >> id))
      throw protocol::ProtocolError(p.string() +
                                    ": missing (run `hetal client encrypt --server` first)");
    return id;
  }
  std::unique_ptr<protocol::ServerLink> link() const {
    if (!remote()) return protocol::directory_link(bundle_dir);
    return protocol::grpc_transport::grpc_link(endpoint, local_bundle(), job_id());
  }

  protocol::WaitOptions waiting(const std::string& who) const {
    protocol::WaitOptions w;
    w.timeout_s = timeout;
    w.progress = progress_bar(who);
    return w;
  }
};

TrainingCommands::TrainingCommands(CLI::App& app, const bool& insecure)
    : impl_(std::make_unique<Impl>(insecure)) {
  Impl& m = *impl_;
  m.client = app.add_subcommand("client", "data owner: keys, encryption, decisions, decryption");
  m.client->require_subcommand(1);
  m.c_keygen = m.client->add_subcommand("keygen", "generate the keys (secret key stays here)");
  m.add_dirs(m.c_keygen);
  m.add_config(m.c_keygen);
  m.c_keygen->add_option("--dataset", m.dataset,
                         "take the feature count and classes from a built-in set (its "
                         "MobileNetV2 features, or --pixels)");
  m.c_keygen->add_flag("--pixels", m.pixels, "with --dataset: raw pixels");
  m.choice.add_options(m.c_keygen);
  m.c_keygen->add_option("--features", m.features_file,
                         "take the feature count and classes from features (file or folder; "
                         "classes from --labels or the folder's labels.npy)");
  m.c_keygen->add_option("--labels", m.labels_file, "labels of --features");
  m.c_keygen->add_option("--feature-count", m.features, "features per sample (d)");
  m.c_keygen->add_option("--classes", m.classes, "number of classes");

  m.c_encrypt = m.client->add_subcommand("encrypt", "split, encrypt and write the upload bundle");
  m.add_dirs(m.c_encrypt);
  m.add_data(m.c_encrypt, true);
  m.c_encrypt->add_option("--description", m.description, "free text stored in the bundle");

  m.c_watch = m.client->add_subcommand(
      "watch", "answer the server each epoch (validation loss, early stopping)");
  m.add_dirs(m.c_watch);
  m.c_watch->add_option("--plot", m.plot, "training-curve image (SVG)");
  m.c_watch->add_option("--timeout", m.timeout, "seconds to wait for each epoch")
      ->capture_default_str();

  m.c_decrypt = m.client->add_subcommand("decrypt", "decrypt the best epoch's model");
  m.add_dirs(m.c_decrypt);
  m.c_decrypt->add_option("--out", m.out, "model file (.csv)")->required();

  m.c_predict = m.client->add_subcommand("predict", "accuracy of the model on test data");
  m.add_dirs(m.c_predict);
  m.add_data(m.c_predict, true);
  m.c_predict->add_flag("--encrypted", m.encrypted,
                        "encrypted inference: encrypted features, encrypted model, on the server "
                        "(run `hetal server infer` beside it)");

  m.c_status = m.client->add_subcommand("status", "the job's state on the server (--server)");
  m.c_status->add_option("--client", m.client_dir, "client's private directory")
      ->capture_default_str();
  m.add_network(m.c_status);
  m.c_cancel = m.client->add_subcommand("cancel", "cancel the job on the server (--server)");
  m.c_cancel->add_option("--client", m.client_dir, "client's private directory")
      ->capture_default_str();
  m.add_network(m.c_cancel);

  m.server = app.add_subcommand("server", "compute provider: public keys only");
  m.server->require_subcommand(1);
  m.s_train = m.server->add_subcommand("train", "train on the bundle, epoch by epoch");
  m.s_train->add_option("--bundle", m.bundle_dir, "shared bundle directory")->capture_default_str();
  m.s_train->add_flag("--resume", m.resume, "continue from the last checkpoint");
  m.s_train->add_option("--timeout", m.timeout, "seconds to wait for each decision")
      ->capture_default_str();
  m.serve.add(m.server);
  m.s_infer = m.server->add_subcommand("infer", "answer an encrypted inference request");
  m.s_infer->add_option("--bundle", m.bundle_dir, "shared bundle directory")->capture_default_str();

  m.reference = app.add_subcommand(
      "reference", "plain reference trainer: exact softmax and simulation, test accuracy");
  m.add_config(m.reference);
  m.add_data(m.reference, true);
  m.reference->add_option("--test-limit", m.test_limit, "test rows (0: all)");
  m.add_test_data(m.reference);

  m.demo = app.add_subcommand(
      "demo", "both roles end to end on a real data set (the server as a separate process)");
  m.add_config(m.demo);
  m.add_data(m.demo, false);
  m.add_test_data(m.demo);
  m.demo->add_option("--limit", m.limit,
                     "training rows used, before the 87.5/12.5 split (default 2926; 0: all)");
  m.demo->add_option("--test-limit", m.test_limit, "test rows (default 2048; 0: all)");
  m.demo->add_option("--work", m.work, "working directory (client/, bundle/, reports)")
      ->capture_default_str();
  m.demo
      ->add_option("--transport", m.transport,
                   "grpc: the server as a gRPC service with mutual TLS on loopback; files: a "
                   "shared bundle directory")
      ->check(CLI::IsMember({"grpc", "files"}))
      ->capture_default_str();
}

TrainingCommands::~TrainingCommands() = default;

bool TrainingCommands::run(int& code) {
  Impl& m = *impl_;
  const bool ins = m.insecure;
  code = 0;
  const auto opt = [&](CLI::App* sub) {
    const protocol::TrainConfig h = protocol::hetal_hyperparameters(m.hyper);
    if (!sub->count("--lr")) m.cfg.learning_rate = h.learning_rate;
    if (!sub->count("--batch")) m.cfg.batch = h.batch;
    if (!sub->count("--epochs")) m.cfg.max_epochs = h.max_epochs;
    if (m.optimizer != "nesterov" && m.optimizer != "gd")
      throw CLI::ValidationError("--optimizer", "nesterov or gd");
    m.cfg.optimizer =
        m.optimizer == "gd" ? train::Optimizer::gradient_descent : train::Optimizer::nesterov;
  };
  if (*m.c_keygen) {
    opt(m.c_keygen);
    if (!m.dataset.empty() && !m.pixels) {
      m.features = m.choice.dimension();
      m.classes = 10;
    } else if (!m.dataset.empty()) {
      const auto d = train::load_builtin(m.dataset, "test");
      m.features = d.x.cols;
      m.classes = d.classes;
    } else if (!m.features_file.empty()) {
      const auto d = m.raw("train", 0);
      m.features = d.x.cols;
      if (!m.classes) m.classes = d.classes;
    }
    if (!m.features || !m.classes)
      throw CLI::ValidationError("keygen", "give --dataset, or --feature-count and --classes");
    if (m.remote()) m.bundle_dir = m.local_bundle();
    const double s =
        protocol::client_keygen(m.client_dir, m.bundle_dir, m.cfg, m.features, m.classes, ins);
    std::printf(
        "keys for %zu features, %zu classes, batch %zu (%s) in %.1f s: secret key in %s, "
        "public keys in %s/keys\n",
        m.features, m.classes, m.cfg.batch, m.cfg.preset.c_str(), s, m.client_dir.c_str(),
        m.bundle_dir.c_str());
    return true;
  }
  if (*m.c_encrypt) {
    auto d = m.raw("train", m.limit);
    // The scaler is fitted on the client's training rows and kept with its private files:
    // predict applies the same statistics.
    const auto scaler = train::FeatureScaler::fit(d.x, m.normalization());
    scaler.apply(d.x);
    fs::create_directories(m.client_dir);
    scaler.save((fs::path(m.client_dir) / "feature_scaler.txt").string());
    const auto s = protocol::client_encrypt(m.client_dir, m.local_bundle(), d,
                                            m.description.empty() ? m.dataset : m.description, ins,
                                            progress_bar("client"));
    std::printf(
        "encrypted %zu training rows (%zu batches) and %zu validation rows: %zu "
        "ciphertexts, %.1f MB, %.1f s\n",
        s.train_rows, s.train_batches, s.validation_rows, s.ciphertexts,
        static_cast<double>(s.bytes) / 1e6, s.seconds);
    if (m.remote()) {
      const auto t0 = Clock::now();
      const auto up = protocol::grpc_transport::submit_bundle(m.endpoint, m.local_bundle(),
                                                              progress_bar("upload"));
      write_file((fs::path(m.client_dir) / "job.txt").string(), up.job_id + "\n");
      std::printf(
          "uploaded to %s in %.1f s: %.1f MB sent, %zu objects (%zu already on the server); "
          "job %s\n",
          m.endpoint.server.c_str(), since(t0), static_cast<double>(up.bytes_sent) / 1e6,
          up.objects, up.already_there, up.job_id.c_str());
    }
    return true;
  }
  if (*m.c_watch) {
    const auto w = protocol::client_watch(m.client_dir, *m.link(), ins, m.waiting("client"));
    for (const auto& e : w.epochs)
      std::printf("epoch %zu: validation loss %.4f, accuracy %.4f%s\n", e.epoch + 1,
                  e.validation_loss, e.validation_accuracy, e.stop ? "  -> stop" : "");
    std::printf("best epoch %zu\n", w.best_epoch + 1);
    if (!m.plot.empty()) write_file(m.plot, protocol::training_curve_svg(w, "hetal training"));
    return true;
  }
  if (*m.c_decrypt) {
    write_model_csv(m.out, protocol::client_decrypt_model(m.client_dir, *m.link(), ins));
    std::printf("model written to %s\n", m.out.c_str());
    return true;
  }
  if (*m.c_predict) {
    auto d = m.raw("test", m.limit);
    const fs::path scaler_file = fs::path(m.client_dir) / "feature_scaler.txt";
    const auto scaler =
        fs::exists(scaler_file)
            ? train::FeatureScaler::load(scaler_file.string())
            : train::FeatureScaler::fit(d.x, m.normalization() == train::Normalization::standard
                                                 ? train::Normalization::none
                                                 : m.normalization());
    scaler.apply(d.x);
    double acc = 0;
    if (m.encrypted) {
      acc = train::logits_loss_accuracy(protocol::client_predict_encrypted(
                                            m.client_dir, *m.link(), d.x, ins, m.waiting("client")),
                                        d.y)
                .second;
    } else {
      acc = train::accuracy(protocol::client_decrypt_model(m.client_dir, *m.link(), ins), d);
    }
    std::printf("%s accuracy on %zu rows: %.4f\n", m.encrypted ? "encrypted-inference" : "plain",
                d.x.rows, acc);
    return true;
  }
  if (*m.c_status || *m.c_cancel) {
    std::printf("job %s: %s\n", m.job_id().c_str(),
                (*m.c_status ? protocol::grpc_transport::job_status
                             : protocol::grpc_transport::cancel_job)(m.endpoint, m.job_id())
                    .c_str());
    return true;
  }
  if (*m.serve.app) {
    code = m.serve.run(ins);
    return true;
  }
  if (*m.s_train) {
    const auto r = protocol::server_train(m.bundle_dir, ins, m.resume, m.waiting("server"));
    const auto& t = r.times;
    const double n = t.steps ? static_cast<double>(t.steps) : 1.0;
    std::printf(
        "server: %zu epochs, %zu steps%s; per step: matrix products %.1f s, softmax %.1f s "
        "(%zu bootstraps in all), model bootstrapping %.1f s, other %.1f s, total %.1f s\n",
        r.epochs, t.steps, r.resumed_from ? " (resumed)" : "", t.matmul / n, t.softmax / n,
        t.softmax_bootstraps, t.bootstrap / n, t.other / n, t.total() / n);
    return true;
  }
  if (*m.s_infer) {
    protocol::server_infer(m.bundle_dir, ins, m.waiting("server"));
    return true;
  }
  if (*m.reference) {
    opt(m.reference);
    auto all = m.raw("train", m.limit);
    const auto scaler = train::FeatureScaler::fit(all.x, m.normalization());
    scaler.apply(all.x);
    const auto test = m.test_data(all.classes, scaler);
    if (test.x.rows && test.x.cols != all.x.cols)
      throw CLI::ValidationError("--test-features",
                                 "test features have " + std::to_string(test.x.cols) +
                                     " columns, training features " + std::to_string(all.x.cols));
    const auto [tr, va] = train::split(all, m.cfg.validation_fraction, m.cfg.seed);
    train::TrainParams tp = protocol::plain_params(m.cfg);
    std::printf(
        "plain reference: %zu training / %zu validation / %zu test rows, batch %zu, lr "
        "%g, %s, up to %zu epochs (patience %zu), normalisation %s\n",
        tr.x.rows, va.x.rows, test.x.rows, tp.batch, tp.learning_rate, m.optimizer.c_str(),
        tp.max_epochs, tp.patience, train::normalization_name(scaler.kind).c_str());
    if (!test.x.rows)
      std::printf(
          "no held-out test set (give --test-features / --test-labels): only "
          "validation figures are reported\n");
    double acc[2] = {};
    for (int k = 0; k < 2; ++k) {
      tp.softmax = k ? train::SoftmaxKind::simulation : train::SoftmaxKind::exact;
      tp.weight_bound = k ? m.cfg.weight_bound : 0;  // only the simulation bootstraps
      const auto t0 = Clock::now();
      train::TrainResult r;
      try {
        r = train::train(tr, va, tp);
      } catch (const std::range_error& e) {
        // The exact run above stands; the simulation (the encrypted run's twin) diverged:
        // a logit beyond the softmax's range or a weight beyond the bound.
        std::fprintf(stderr, "hetal: error: simulation: %s\n", e.what());
        code = 1;
        return true;
      }
      const auto& best = r.epochs[r.best_epoch];
      std::printf("%-10s: %zu epochs (best %zu), %zu steps, validation loss %.4f, accuracy %.2f %%",
                  k ? "simulation" : "exact", r.epochs.size(), r.best_epoch + 1, r.steps,
                  best.validation_loss, 100 * best.validation_accuracy);
      if (test.x.rows) {
        acc[k] = train::accuracy(r.weights, test);
        std::printf(", test accuracy %.2f %%", 100 * acc[k]);
      }
      std::printf(", max |W| %.2f at step %zu (%.1f s)\n", r.max_abs_weight, r.max_abs_weight_step,
                  since(t0));
    }
    if (test.x.rows)
      std::printf("simulation - exact: %+.2f points (test)\n", 100 * (acc[1] - acc[0]));
    return true;
  }
  if (*m.demo) {
    opt(m.demo);
    // Defaults sized for the main job: about 11 minutes at N = 2^16 on 2 cores (6 steps).
    // Chosen on validation data (docs/benchmarks.md, "The main job"): of the 6-step schedules,
    // 2560 rows x 2 epochs at lr 0.3 was within 0.1 point of the best accuracy on 10000
    // held-out training images and had the lowest validation loss among those.
    if (m.dataset.empty() && m.features_file.empty()) m.dataset = "mnist";
    if (!m.demo->count("--limit")) m.limit = 2926;  // 2560 training rows after the split
    if (!m.demo->count("--test-limit")) m.test_limit = 2048;
    if (!m.demo->count("--epochs")) m.cfg.max_epochs = 2;
    // Standardised pre-trained features take a smaller step than HETAL's lr 2.0 for unit-norm
    // ViT features.
    if (!m.demo->count("--lr") && !m.demo->count("--hyper") &&
        m.normalization() == train::Normalization::standard)
      m.cfg.learning_rate = 0.3;
    const auto t0 = Clock::now();
    const fs::path work(m.work);
    fs::remove_all(work);
    fs::create_directories(work);
    const bool net = m.transport == "grpc";
    const std::string client = (work / "client").string(),
                      bundle =
                          net ? (work / "client" / "outbox").string() : (work / "bundle").string();
    auto all = m.raw("train", m.limit);
    const auto scaler = train::FeatureScaler::fit(all.x, m.normalization());
    scaler.apply(all.x);
    const auto test = m.test_data(all.classes, scaler);
    if (!test.x.rows)
      throw CLI::ValidationError("demo",
                                 "needs a held-out test set: --dataset, or "
                                 "--test-features / --test-labels");
    const std::string what =
        !m.dataset.empty()
            ? m.dataset + (m.pixels ? " (pixels)" : " (MobileNetV2 " + m.choice.layer + ")")
            : m.features_file;
    std::printf(
        "== hetal demo: %s, %zu training rows (87.5 %% train / 12.5 %% validation), %zu "
        "test rows; %s, batch %zu, lr %g, %s, up to %zu epochs (patience %zu); %d "
        "threads ==\n",
        what.c_str(), all.x.rows, test.x.rows, m.cfg.preset.c_str(), m.cfg.batch,
        m.cfg.learning_rate, m.optimizer.c_str(), m.cfg.max_epochs, m.cfg.patience,
        omp_get_max_threads());
    std::fflush(stdout);
    const double tk = protocol::client_keygen(client, bundle, m.cfg, all.x.cols, all.classes, ins);
    std::printf("[client] keys generated and written in %.1f s\n", tk);
    std::fflush(stdout);
    const auto up =
        protocol::client_encrypt(client, bundle, all, what, ins, progress_bar("[client]"));
    std::printf(
        "[client] encrypted %zu training rows (%zu batches), %zu validation rows: %.1f "
        "MB in %.1f s\n",
        up.train_rows, up.train_batches, up.validation_rows, static_cast<double>(up.bytes) / 1e6,
        up.seconds);
    std::fflush(stdout);
    // The server role: a gRPC service (one process for training and inference), or a process
    // per task on the shared directory.
    std::unique_ptr<Child> service, task;
    std::unique_ptr<protocol::ServerLink> link;
    fs::path server_side = bundle;  // where the server keeps the job (its report.json)
    if (net) {
      protocol::grpc_transport::Endpoint ep;
      std::tie(service, ep) = start_service(work, ins);
      const auto tu = Clock::now();
      const auto sub =
          protocol::grpc_transport::submit_bundle(ep, bundle, progress_bar("[client] upload"));
      std::printf(
          "[client] uploaded to the gRPC service at %s (mutual TLS): %.1f MB in %.1f s, job %s\n",
          ep.server.c_str(), static_cast<double>(sub.bytes_sent) / 1e6, since(tu),
          sub.job_id.c_str());
      std::fflush(stdout);
      link = protocol::grpc_transport::grpc_link(ep, bundle, sub.job_id);
      server_side = work / "server" / "tenants" /
                    protocol::grpc_transport::Store::tenant_of("hetal-demo") / "jobs" / sub.job_id;
    } else {
      link = protocol::directory_link(bundle);
      task = server_process("train", bundle, ins);
    }
    const auto finish_task = [&] {  // the directory transport's server process, when it ends
      const int rc = task ? task->wait() : 0;
      task.reset();
      return rc;
    };
    const auto tw = Clock::now();
    const auto watch =
        protocol::client_watch(client, *link, ins, waiting_on(net ? *service : *task, m.timeout));
    if (const int rc = finish_task(); rc != 0) {
      code = rc;
      return true;
    }
    const double train_s = since(tw);
    for (const auto& e : watch.epochs)
      std::printf("[client] epoch %zu: validation loss %.4f, accuracy %.4f%s\n", e.epoch + 1,
                  e.validation_loss, e.validation_accuracy, e.stop ? " (stop)" : "");
    const matrix::Matrix w_enc = protocol::client_decrypt_model(client, *link, ins);
    // Encrypted inference on the test set (files: a second server process).
    if (!net) task = server_process("infer", bundle, ins);
    const auto ti = Clock::now();
    const matrix::Matrix logits = protocol::client_predict_encrypted(
        client, *link, test.x, ins, waiting_on(net ? *service : *task, m.timeout));
    if (const int rc = finish_task(); rc != 0) {
      code = rc;
      return true;
    }
    const double infer_s = since(ti);
    if (service) {
      kill(service->pid, SIGTERM);
      service->wait();
    }
    // The plain reference on the same split, batches and schedule.
    const auto [tr, va] = train::split(all, m.cfg.validation_fraction, m.cfg.seed);
    train::TrainParams tp = protocol::plain_params(m.cfg);
    tp.max_epochs = watch.best_epoch + 1;  // the epoch whose model the client decrypted
    tp.patience = 0;
    tp.softmax = train::SoftmaxKind::simulation;
    const auto sim_best = train::train(tr, va, tp);
    tp.softmax = train::SoftmaxKind::exact;
    tp.weight_bound = 0;
    const auto exact_best = train::train(tr, va, tp);
    const double acc_enc = train::accuracy(w_enc, test);
    const double acc_inf = train::logits_loss_accuracy(logits, test.y).second;
    const double acc_exact = train::accuracy(exact_best.last_weights, test);
    const double acc_sim = train::accuracy(sim_best.last_weights, test);
    const double diff = matrix::max_abs_diff(w_enc, sim_best.last_weights);
    // Reports.
    std::ifstream rin(server_side / "server" / "report.json");
    std::string server_report((std::istreambuf_iterator<char>(rin)), {});
    write_file((work / "training-curve.svg").string(),
               protocol::training_curve_svg(watch, "hetal demo: " + what));
    char extra[768];
    std::snprintf(extra, sizeof extra,
                  "{\"dataset\": \"%s\", \"train_rows\": %zu, \"validation_rows\": %zu, "
                  "\"test_rows\": %zu, \"test_accuracy\": {\"encrypted_training\": %.6f, "
                  "\"encrypted_inference\": %.6f, \"plain_exact\": %.6f, \"plain_simulation\": "
                  "%.6f}, \"max_abs_weight_diff_vs_simulation\": %.3e, \"keygen_seconds\": %.2f, "
                  "\"encrypt_seconds\": %.2f, \"training_seconds\": %.2f, "
                  "\"inference_seconds\": %.2f, \"total_seconds\": %.2f,\n \"server\": ",
                  what.c_str(), up.train_rows, up.validation_rows, test.x.rows, acc_enc, acc_inf,
                  acc_exact, acc_sim, diff, tk, up.seconds, train_s, infer_s, since(t0));
    write_file((work / "report.json").string(),
               std::string(extra) + (server_report.empty() ? "null" : server_report) + "}\n");
    std::printf("\n== result (%s test set, %zu rows) ==\n", what.c_str(), test.x.rows);
    std::printf("encrypted training, decrypted model:   %.2f %%\n", 100 * acc_enc);
    std::printf("encrypted inference (encrypted model): %.2f %%\n", 100 * acc_inf);
    std::printf("plain reference, exact softmax:        %.2f %%\n", 100 * acc_exact);
    std::printf("plain reference, simulation:           %.2f %%\n", 100 * acc_sim);
    std::printf("max |W_encrypted - W_simulation|:      %.2e (max |W| %.2f)\n", diff,
                matrix::max_abs(w_enc));
    std::printf(
        "time: keygen %.0f s, encrypt %.0f s, training %.0f s, inference %.0f s, total "
        "%.0f s\n",
        tk, up.seconds, train_s, infer_s, since(t0));
    std::printf("report: %s, curve: %s\n", (work / "report.json").c_str(),
                (work / "training-curve.svg").c_str());
    return true;
  }
  return false;
}

}  // namespace hetal::cli
