// Internals shared by the training commands' files (train_commands.cpp: options and dispatch;
// client_commands.cpp, server_commands.cpp, demo_command.cpp: one role each; processes.cpp: the
// child processes the demo runs).
#pragma once

#include <sys/types.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cli_util.h"
#include "feature_commands.h"
#include "hetal/protocol/grpc/client_link.h"
#include "hetal/protocol/protocol.h"
#include "hetal/train/data_io.h"
#include "hetal/train/datasets.h"
#include "serve_command.h"
#include "train_commands.h"

namespace hetal::cli {

namespace fs = std::filesystem;

/// Raw (unnormalised) rows: a built-in set's pixels, or features and labels from files (a
/// folder written by `hetal client extract` stands for its features.npy / labels.npy).
train::Dataset load_data(const std::string& dataset, const std::string& split,
                         const std::string& features, const std::string& labels,
                         std::size_t classes, std::size_t limit);
void write_file(const std::string& path, const std::string& text);
void write_model_csv(const std::string& path, const matrix::Matrix& w);

/// This executable as a child process (the server role of the demo).
struct Child {
  pid_t pid = -1;
  int status = 0;
  bool finished = false;
  explicit Child(const std::vector<std::string>& args);
  bool alive();
  int wait();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child();
};

/// `hetal [--insecure] server <command> --bundle <bundle>` as a child process.
std::unique_ptr<Child> server_process(const char* command, const std::string& bundle,
                                      bool insecure);
/// `hetal [--insecure] server serve` on a free loopback port with test certificates made in
/// work/certs; returns the service and the client's endpoint (tenant "hetal-demo").
std::pair<std::unique_ptr<Child>, protocol::grpc_transport::Endpoint> start_service(
    const fs::path& work, bool insecure);
/// Waiting for a child's files fails at once when the child has exited.
protocol::WaitOptions waiting_on(Child& child, double timeout_s);

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
  bool resume = false, encrypted = false, server_network = false;
  std::string lower_network;  // the server's model file (--lower-network)
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
  /// `lower_network`: the features go through the server's network, which was trained on
  /// them as they are (auto leaves them unnormalised then).
  train::Normalization normalization(bool lower_network = false) const {
    if (norm == "auto" && lower_network) return train::Normalization::none;
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
  /// HETAL's hyper-parameters of --hyper where the command line gives none; the optimizer.
  void apply_hyper(CLI::App* sub);
};

/// Each runs its parsed subcommands, if any, and returns whether one ran.
bool run_client_commands(TrainingCommands::Impl& m, int& code);
bool run_server_commands(TrainingCommands::Impl& m, int& code);
bool run_reference(TrainingCommands::Impl& m, int& code);
bool run_demo(TrainingCommands::Impl& m, int& code);

}  // namespace hetal::cli
