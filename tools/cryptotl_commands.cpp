// `hetal cryptotl ...`: CryptoTL's roles as commands (the files are in
// src/hetal/protocol/cryptotl/transfer.h) and the evaluation of the transfer pairs.
#include "cryptotl_commands.h"

#include <omp.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli_util.h"
#include "cryptotl_evaluate.h"
#include "hetal/cryptotl/encrypted_network.h"
#include "hetal/data/npy.h"
#include "hetal/features/transfer_sets.h"
#include "hetal/nn/metrics.h"
#include "hetal/nn/torch_models.h"
#include "hetal/protocol/cryptotl/transfer.h"
#include "hetal/protocol/grpc/client_link.h"
#include "hetal/train/data_io.h"

namespace hetal::cli {

namespace fs = std::filesystem;
namespace tl = protocol::cryptotl;

namespace {

// --dataset NAME --split S, or --features DIR (a `hetal client extract` folder).
struct DataChoice {
  std::string dataset, split = "train", features;
  void add(CLI::App* c, bool split_option = true) {
    c->add_option(
        "--dataset", dataset,
        "built-in transfer set: fine-foods, reuters-corn, reuters-grain, austen, spam-a, spam-b");
    if (split_option)
      c->add_option("--split", split, "train or test (built-in sets)")->capture_default_str();
    c->add_option(
        "--features", features,
        "a folder of features.npy / labels.npy (/ classes.txt), e.g. from hetal client extract");
  }
  tl::Rows load() const {
    if (dataset.empty() == features.empty())
      throw CLI::ValidationError("--dataset/--features", "give exactly one of them");
    tl::Rows r;
    if (!dataset.empty()) {
      std::unique_ptr<features::GloveEncoder> glove;
      if (dataset.rfind("spam", 0) != 0) glove = std::make_unique<features::GloveEncoder>();
      const auto f = features::load_transfer_set(dataset, split, glove.get());
      r.rows = f.rows;
      r.cols = f.cols;
      r.x = f.x;
      r.y = f.y;
      r.class_names = f.class_names;
      return r;
    }
    const fs::path dir(features);
    const auto m = train::load_matrix((dir / "features.npy").string());
    const auto l = train::load_labels((dir / "labels.npy").string());
    if (l.size() != m.rows)
      throw std::invalid_argument(features + ": " + std::to_string(m.rows) + " feature rows but " +
                                  std::to_string(l.size()) + " labels");
    r.rows = m.rows;
    r.cols = m.cols;
    r.x.assign(m.data.begin(), m.data.end());
    for (auto v : l) r.y.push_back(static_cast<std::int64_t>(v));
    if (std::ifstream in(dir / "classes.txt"); in)
      for (std::string line; std::getline(in, line);) r.class_names.push_back(line);
    return r;
  }
};

nn::Table table_of(const tl::Rows& r) {
  nn::Table t;
  t.rows = r.rows;
  t.cols = r.cols;
  t.x = r.x;
  t.y = r.y;
  std::int64_t mx = 1;
  for (auto v : r.y) mx = std::max(mx, v);
  t.classes = std::max<std::size_t>(r.class_names.size(), static_cast<std::size_t>(mx) + 1);
  return t;
}

void add_train_options(CLI::App* c, nn::TrainOptions& o) {
  c->add_option("--epochs", o.max_epochs,
                "at most this many epochs (early stopping on a held-out 10 %)")
      ->capture_default_str();
  c->add_option("--batch", o.batch, "mini-batch size")->capture_default_str();
  c->add_option("--lr", o.learning_rate, "Adam's learning rate")->capture_default_str();
  c->add_option("--seed", o.seed, "initial weights, shuffles and dropout")->capture_default_str();
  c->add_flag("--verbose", o.verbose, "print every epoch's validation loss");
}

void print_metrics(const char* what, const nn::Metrics& m, std::size_t rows) {
  std::printf("%s: accuracy %.2f %%, F1 %.4f, Cohen's kappa %.4f (%zu rows)\n", what,
              100 * m.accuracy, m.f1, m.kappa, rows);
}

}  // namespace

struct CryptotlCommands::Impl {
  const bool& insecure;
  CLI::App *root = nullptr, *server_train = nullptr, *encrypt = nullptr, *forward = nullptr,
           *client_train = nullptr, *predict = nullptr, *evaluate = nullptr, *send = nullptr;
  protocol::grpc_transport::Endpoint endpoint;
  DataChoice source, target;
  std::string model, client, bundle, name, split = "train", test_split = "test", upper, out;
  nn::TrainOptions lower_opts, upper_opts;
  double dp_epsilon = 0, dp_delta = 1e-5, dp_lo = -1, dp_hi = 1, dp_radius = 0;
  int threads = 0;
  EvaluateOptions eval;

  explicit Impl(const bool& ins) : insecure(ins) {}

  int run_server_train() {
    const auto rows = source.load();
    nn::TrainLog log;
    auto net = nn::train_lower_network(table_of(rows), lower_opts, &log);
    net.source = source.dataset.empty() ? source.features : source.dataset + " " + source.split;
    nn::save_lower_network(net, model);
    std::printf(
        "lower network %zu -> %zu trained on %s (%zu rows): %zu epochs, best validation "
        "loss %.4f at epoch %zu, %.1f s; written to %s (the server's; keep it private)\n",
        net.dim, net.out_dim(), net.source.c_str(), rows.rows, log.epochs, log.best_validation_loss,
        log.best_epoch, log.seconds, model.c_str());
    return 0;
  }

  int run_encrypt() {
    target.split = split;
    const auto rows = target.load();
    const auto t0 = Clock::now();
    tl::client_setup(client, rows.cols, hetal::cryptotl::default_parameters(), insecure);
    const double keys_s = since(t0);
    const auto t1 = Clock::now();
    const std::string split_name = name.empty() ? split : name;
    tl::client_encrypt(client, bundle, split_name, rows);
    std::printf(
        "%zu rows of dimension %zu encrypted into %s/inputs-%s.cts in %.1f s (keys %.1f s; "
        "secret key and labels stay in %s)\n",
        rows.rows, rows.cols, bundle.c_str(), split_name.c_str(), since(t1), keys_s,
        client.c_str());
    return 0;
  }

  int run_forward() {
    if (threads > 0) omp_set_num_threads(threads);
    tl::ForwardOptions o;
    o.insecure = insecure;
    if (dp_epsilon < 0)
      throw CLI::ValidationError("--dp-epsilon", "must be positive (0: no noise)");
    if (dp_epsilon < 0)
      throw CLI::ValidationError("--dp-epsilon", "must be positive (0: no noise)");
    if (dp_epsilon > 0) o.dp = tl::DpOptions{dp_epsilon, dp_delta, dp_lo, dp_hi, dp_radius};
    const auto r = tl::server_forward(model, bundle, o);
    std::size_t rows = 0;
    for (const auto& s : r.splits()) rows += s.rows();
    std::printf(
        "lower network on %zu encrypted samples (%u per ciphertext) in %.2f s: %.0f "
        "samples/s\n",
        rows, r.samples_per_ciphertext(), r.seconds(), rows / r.seconds());
    if (r.has_dp())
      std::printf(
          "differential privacy: (epsilon %.3g, delta %.3g) per output row, sensitivity "
          "%.4g over inputs in %s, noise sigma %.4g\n",
          r.dp().epsilon(), r.dp().delta(), r.dp().sensitivity(),
          r.dp().input_radius() > 0
              ? ("the L2 ball of radius " + std::to_string(r.dp().input_radius())).c_str()
              : ("[" + std::to_string(r.dp().input_lo()) + ", " +
                 std::to_string(r.dp().input_hi()) + "]^d")
                    .c_str(),
          r.dp().sigma());
    return 0;
  }

  int run_send() {
    const auto t0 = Clock::now();
    const auto r = protocol::grpc_transport::cryptotl_forward(endpoint, bundle);
    std::size_t rows = 0;
    for (const auto& s : r.splits()) rows += s.rows();
    std::printf(
        "the service ran its lower network on %zu encrypted samples (%u per ciphertext) in "
        "%.2f s (%.0f samples/s); upload, evaluation and download %.1f s; outputs in %s\n",
        rows, r.samples_per_ciphertext(), r.seconds(), rows / r.seconds(), since(t0),
        bundle.c_str());
    if (r.has_dp())
      std::printf(
          "differential privacy: (epsilon %.3g, delta %.3g) per output row, noise sigma %.4g\n",
          r.dp().epsilon(), r.dp().delta(), r.dp().sigma());
    return 0;
  }

  int run_client_train() {
    const auto tr = tl::client_decrypt(client, bundle, split);
    nn::TrainLog log;
    const auto m = nn::UpperModel::train(table_of(tr), upper_opts, &log);
    m.save(upper);
    std::printf(
        "upper layers trained on %zu decrypted outputs of dimension %zu: %zu epochs, best "
        "validation loss %.4f, %.1f s; written to %s\n",
        tr.rows, tr.cols, log.epochs, log.best_validation_loss, log.seconds, upper.c_str());
    if (!test_split.empty() && test_split != split) {
      const auto te = tl::client_decrypt(client, bundle, test_split);
      print_metrics(("test split '" + test_split + "'").c_str(),
                    nn::classification_metrics(te.y, m.predict(te.x, te.rows), m.classes()),
                    te.rows);
    }
    return 0;
  }

  int run_predict() {
    const auto m = nn::UpperModel::load(upper);
    const auto te = tl::client_decrypt(client, bundle, split);
    const auto pred = m.predict(te.x, te.rows);
    if (!out.empty()) {
      std::string csv = "row,predicted\n";
      for (std::size_t i = 0; i < pred.size(); ++i)
        csv +=
            std::to_string(i) + "," +
            (static_cast<std::size_t>(pred[i]) < te.class_names.size() ? te.class_names[pred[i]]
                                                                       : std::to_string(pred[i])) +
            "\n";
      data::write_file_atomic(out, csv);
      std::printf("%zu predictions written to %s\n", pred.size(), out.c_str());
    }
    print_metrics(("split '" + split + "'").c_str(),
                  nn::classification_metrics(te.y, pred, m.classes()), te.rows);
    return 0;
  }
};

CryptotlCommands::CryptotlCommands(CLI::App& app, const bool& insecure)
    : impl_(std::make_unique<Impl>(insecure)) {
  auto& m = *impl_;
  m.root = app.add_subcommand(
      "cryptotl",
      "CryptoTL mode: the server's private lower network on the client's encrypted inputs, the "
      "client's upper layers trained in plaintext");
  m.root->require_subcommand(1);

  m.server_train = m.root->add_subcommand(
      "server-train",
      "server: train the lower network on a source set (libtorch), save it privately");
  m.source.add(m.server_train);
  m.server_train->add_option("--out", m.model, "the server's model file")->required();
  add_train_options(m.server_train, m.lower_opts);

  m.encrypt = m.root->add_subcommand(
      "encrypt", "client: make keys (first use) and encrypt a split's inputs into the bundle");
  m.target.add(m.encrypt, false);
  m.encrypt->add_option("--split", m.split, "train or test (built-in sets)")->capture_default_str();
  m.encrypt->add_option("--name", m.name, "the split's name in the bundle (default: --split)");
  m.encrypt->add_option("--client", m.client, "the client's private folder (secret key, labels)")
      ->required();
  m.encrypt->add_option("--bundle", m.bundle, "the folder the server reads")->required();
  m.target.split = "train";

  m.forward = m.root->add_subcommand(
      "forward", "server: evaluate the lower network on the bundle's encrypted inputs");
  m.forward->add_option("--model", m.model, "the server's model file")->required();
  m.forward->add_option("--bundle", m.bundle, "the client's bundle folder")->required();
  m.forward->add_option("--threads", m.threads, "OpenMP threads (0: all)");
  m.forward->add_option("--dp-epsilon", m.dp_epsilon,
                        "add Gaussian noise for (epsilon, delta)-DP per output row (0: none)");
  m.forward->add_option("--dp-delta", m.dp_delta, "delta of the DP guarantee")
      ->capture_default_str();
  m.forward->add_option("--dp-input-lo", m.dp_lo, "inputs assumed in [lo, hi] for the sensitivity")
      ->capture_default_str();
  m.forward->add_option("--dp-input-hi", m.dp_hi, "")->capture_default_str();
  m.forward->add_option("--dp-input-radius", m.dp_radius,
                        "inputs assumed in the L2 ball of this radius instead (GloVe features: 1)");

  m.send = m.root->add_subcommand(
      "send",
      "client: have a network service (hetal server serve --cryptotl-model) run its lower "
      "network on the bundle's inputs; the outputs come back into the bundle");
  m.send->add_option("--bundle", m.bundle, "the bundle folder (hetal cryptotl encrypt)")
      ->required();
  m.send->add_option("--server", m.endpoint.server, "HOST:PORT of the service")->required();
  m.send->add_option("--ca", m.endpoint.ca_file, "CA certificate the server's chains to")
      ->required();
  m.send->add_option("--cert", m.endpoint.cert_file, "the client's certificate (PEM)")->required();
  m.send->add_option("--key", m.endpoint.key_file, "the client's private key (PEM)")->required();

  m.client_train = m.root->add_subcommand(
      "client-train", "client: decrypt the outputs and train the upper layers (libtorch)");
  m.client_train->add_option("--client", m.client, "the client's folder")->required();
  m.client_train->add_option("--bundle", m.bundle, "the bundle folder")->required();
  m.client_train->add_option("--split", m.split, "split to train on")->capture_default_str();
  m.client_train->add_option("--test-split", m.test_split, "split to report metrics on ('' none)")
      ->capture_default_str();
  m.client_train->add_option("--out", m.upper, "the upper-layer model file")->required();
  add_train_options(m.client_train, m.upper_opts);

  m.predict = m.root->add_subcommand(
      "predict",
      "client: classify a split through the encrypted lower network and the upper layers");
  m.predict->add_option("--client", m.client, "the client's folder")->required();
  m.predict->add_option("--bundle", m.bundle, "the bundle folder")->required();
  m.predict->add_option("--model", m.upper, "the upper-layer model file")->required();
  m.predict->add_option("--split", m.split, "split to classify")->capture_default_str();
  m.predict->add_option("--out", m.out, "write row,predicted class to this CSV");

  m.evaluate = m.root->add_subcommand(
      "evaluate",
      "benchmark: every transfer pair with real keys, against no transfer and no encryption");
  add_evaluate_options(m.evaluate, m.eval);
}

CryptotlCommands::~CryptotlCommands() = default;

bool CryptotlCommands::run(int& code) {
  auto& m = *impl_;
  if (!*m.root) return false;
  if (*m.server_train)
    code = m.run_server_train();
  else if (*m.encrypt)
    code = m.run_encrypt();
  else if (*m.forward)
    code = m.run_forward();
  else if (*m.client_train)
    code = m.run_client_train();
  else if (*m.predict)
    code = m.run_predict();
  else if (*m.evaluate)
    code = run_evaluate(m.eval);
  else if (*m.send)
    code = m.run_send();
  return true;
}

}  // namespace hetal::cli
