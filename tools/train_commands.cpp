// The training workflow's options and dispatch: `hetal client ...` (client_commands.cpp),
// `hetal server ...` (server_commands.cpp), `hetal reference` and `hetal demo`
// (demo_command.cpp).
#include <algorithm>
#include <cstdio>
#include <fstream>

#include "hetal/ckks/serialization.h"
#include "train_impl.h"

namespace hetal::cli {

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

void TrainingCommands::Impl::apply_hyper(CLI::App* sub) {
  const protocol::TrainConfig h = protocol::hetal_hyperparameters(hyper);
  if (!sub->count("--lr")) cfg.learning_rate = h.learning_rate;
  if (!sub->count("--batch")) cfg.batch = h.batch;
  if (!sub->count("--epochs")) cfg.max_epochs = h.max_epochs;
  if (optimizer != "nesterov" && optimizer != "gd")
    throw CLI::ValidationError("--optimizer", "nesterov or gd");
  cfg.optimizer =
      optimizer == "gd" ? train::Optimizer::gradient_descent : train::Optimizer::nesterov;
}

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
  m.c_keygen->add_flag("--server-network", m.server_network,
                       "train the head on the outputs of the server's private lower network "
                       "(CryptoTL's; `hetal server train --lower-network`), never decrypted: "
                       "the features are its raw inputs, the batch one ciphertext of them");

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
  const char* lower_help =
      "the server's private lower network (`hetal cryptotl server-train`), for a client that "
      "made its keys with --server-network";
  m.s_train->add_option("--lower-network", m.lower_network, lower_help);
  m.serve.add(m.server);
  m.s_infer = m.server->add_subcommand("infer", "answer an encrypted inference request");
  m.s_infer->add_option("--bundle", m.bundle_dir, "shared bundle directory")->capture_default_str();
  m.s_infer->add_option("--lower-network", m.lower_network, lower_help);

  m.reference = app.add_subcommand(
      "reference", "plain reference trainer: exact softmax and simulation, test accuracy");
  m.add_config(m.reference);
  m.reference->add_option("--lower-network", m.lower_network,
                          "first run the features through this lower network in plaintext (the "
                          "twin of a --server-network run)");
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
  return run_client_commands(m, code) || run_server_commands(m, code) || run_reference(m, code) ||
         run_demo(m, code);
}

}  // namespace hetal::cli
