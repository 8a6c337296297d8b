// The HETAL protocol between a data owner (client) and a compute provider (server), carried by
// files in a shared bundle directory (hetal.md sections 1, 6, 10). The two roles share nothing
// else: the client's directory (secret key, its validation labels, results) is never read by
// the server, and every message is a file written under a temporary name and renamed, so a
// network transport can later carry the same files.
//
//   client keygen   client/: params.bin, secret.key (0600), config.json
//                   bundle/keys/: params.bin, public.key, relin.key, galois.key, bootstrap.key
//   client encrypt  bundle/meta.json (sizes, hyper-parameters, key id), bundle/data/*.cts
//   server train    per epoch: bundle/epochs/val-<e>.cts (encrypted validation logits) and
//                   model-<e>.cts (compact encrypted model); waits for decision-<e>.json;
//                   checkpoints in bundle/server/ so that a killed run resumes; bundle/done.json
//   client watch    per epoch: decrypts the logits, validation loss, writes decision-<e>.json
//                   (continue / stop, early stopping with patience)
//   client decrypt  the best epoch's model, in plaintext
//   client predict  encrypted inference: bundle/infer/request.json + x-<b>.cts; the server
//                   (server infer) answers logits-<b>.cts with the encrypted model
//
// The server learns sizes, hyper-parameters, when the client stops, and which epoch's model
// the client asks to run inference with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hetal/train/encrypted_trainer.h"
#include "hetal/train/plain_trainer.h"

namespace hetal::protocol {

/// Thrown for anything wrong with a bundle, a key, a message or a wait; the message names the
/// file and the problem.
class ProtocolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct TrainConfig {
  std::string preset = "B16-H192";
  std::size_t batch = 1024;
  double learning_rate = 2.0;  ///< HETAL's MNIST hyper-parameters (hetal.md section 6)
  train::Optimizer optimizer = train::Optimizer::nesterov;
  std::size_t max_epochs = 7, patience = 3;
  double validation_fraction = 0.125;
  std::uint64_t seed = 0;
  double weight_bound = 16;
  /// d of the server's private lower network (CryptoTL's, src/hetal/cryptotl) that the head is
  /// trained on, never decrypted: the client uploads its raw d features, the server runs its
  /// network on them under encryption and trains on the d - 2 outputs. 0: no lower network.
  std::size_t lower_network_dim = 0;
};

/// The batch that fills one ciphertext with samples of a lower network of dimension `dim` at
/// `preset`'s slots (slots / 2^ceil(log2 dim)). Throws ProtocolError for an unknown preset or a
/// dimension that does not fit.
std::size_t lower_network_batch(const std::string& preset, std::size_t dim);

/// The encrypted head's shape for data of `features` features: those features, or with
/// cfg.lower_network_dim the network's d - 2 outputs (then the batch must make HETAL's blocks
/// one sample's slots wide), validated. Throws ProtocolError saying what does not fit.
train::Shape head_shape(const TrainConfig& cfg, std::size_t features, std::size_t classes,
                        std::size_t slots);

/// HETAL's hyper-parameters per data set (hetal.md section 6: learning rate, batch, maximum
/// epochs) for mnist (also used for fashion-mnist), cifar10, facemask, dermamnist, snips.
/// Throws ProtocolError for another name.
TrainConfig hetal_hyperparameters(const std::string& dataset);

/// The plain trainer's parameters that replay a protocol run: the same batches (fixed, in the
/// server's per-epoch order), schedule, learning rate, patience and seed.
train::TrainParams plain_params(const TrainConfig& cfg);

/// Progress callback: (done, total, what).
using Progress = std::function<void(std::size_t, std::size_t, const std::string&)>;

struct WaitOptions {
  double timeout_s = 6 * 3600;  ///< how long to wait for the other side's next file
  Progress progress;
  /// When set and it returns false, waiting fails at once (the other process has exited).
  std::function<bool()> peer_alive;
  /// When set and it returns true, the run stops at once (between steps, or while waiting)
  /// with a ProtocolError saying it was cancelled.
  std::function<bool()> cancelled;
  /// The server's wait for a decision: past timeout_s the run stops cleanly, as if the client
  /// had answered stop, instead of failing (a service must not wait forever for a client).
  bool decision_timeout_stops = false;
};

/// The client's side of the conversation with the server, whatever carries it (the bundle
/// directory, or the network: src/hetal/protocol/grpc). Whatever a call receives is left as
/// files in bundle(), in the directory transport's layout, so the client role reads the same
/// files whichever transport brought them.
class ServerLink {
 public:
  virtual ~ServerLink() = default;
  /// The client's copy of the bundle: meta.json, data/, and what the server sent.
  virtual std::string bundle() const = 0;
  /// Returns once epochs/val-<e>.cts (the epoch's encrypted validation logits) is in bundle().
  virtual void await_epoch(std::size_t e, const WaitOptions& w) = 0;
  /// The answer after epoch e; `abort` non-empty: the client found the run broken.
  virtual void decide(std::size_t e, bool stop, const std::string& abort) = 0;
  /// Returns once the server has finished the run.
  virtual void await_done(const WaitOptions& w) = 0;
  /// Returns once epochs/model-<e>.cts is in bundle().
  virtual void fetch_model(std::size_t e) = 0;
  /// Sends infer/x-<b>.cts (b < rows.size()) for the epoch's model and returns once the
  /// answers infer/logits-<b>.cts are in bundle().
  virtual void infer(std::size_t epoch, const std::vector<std::size_t>& rows,
                     const WaitOptions& w) = 0;
};

/// The directory transport: both roles read and write one shared bundle directory.
std::unique_ptr<ServerLink> directory_link(const std::string& bundle_dir);

// ------------------------------------------------------------------------------ client

/// The configuration `client_keygen` recorded in the client's directory.
TrainConfig client_config(const std::string& client_dir);

/// Generates the keys for training a head of `classes` outputs on `features` features.
/// Seconds spent are returned.
double client_keygen(const std::string& client_dir, const std::string& bundle_dir,
                     const TrainConfig& cfg, std::size_t features, std::size_t classes,
                     bool insecure);

struct UploadSummary {
  std::size_t train_rows = 0, validation_rows = 0, train_batches = 0, ciphertexts = 0;
  double seconds = 0;
  std::uint64_t bytes = 0;
};
/// Splits (seeded), encrypts the training batches and the validation set, writes meta.json.
UploadSummary client_encrypt(const std::string& client_dir, const std::string& bundle_dir,
                             const train::Dataset& all, const std::string& description,
                             bool insecure, const Progress& progress = {});

struct EpochResult {
  std::size_t epoch = 0;
  double validation_loss = 0, validation_accuracy = 0;
  bool stop = false;
};
struct WatchResult {
  std::vector<EpochResult> epochs;
  std::size_t best_epoch = 0;
};
/// Answers the server epoch by epoch until it is done (early stopping with the patience).
WatchResult client_watch(const std::string& client_dir, const std::string& bundle_dir,
                         bool insecure, const WaitOptions& wait = {});
WatchResult client_watch(const std::string& client_dir, ServerLink& link, bool insecure,
                         const WaitOptions& wait = {});
/// The best epoch's model (c x (d + 1)), decrypted.
matrix::Matrix client_decrypt_model(const std::string& client_dir, const std::string& bundle_dir,
                                    bool insecure);
matrix::Matrix client_decrypt_model(const std::string& client_dir, ServerLink& link, bool insecure);
/// Encrypted inference: writes the request, waits for the server's logits, decrypts them.
matrix::Matrix client_predict_encrypted(const std::string& client_dir,
                                        const std::string& bundle_dir, const matrix::Matrix& x,
                                        bool insecure, const WaitOptions& wait = {});
matrix::Matrix client_predict_encrypted(const std::string& client_dir, ServerLink& link,
                                        const matrix::Matrix& x, bool insecure,
                                        const WaitOptions& wait = {});

// ------------------------------------------------------------------------------ server

struct ServerReport {
  train::TimeBreakdown times;
  std::vector<double> epoch_seconds;
  std::size_t epochs = 0, resumed_from = 0;
  double setup_seconds = 0, validation_seconds = 0;
  double data_seconds = 0;  ///< reading training batches from disk, step by step
  /// The server's lower network on the features (training and validation batches; included in
  /// data_seconds and validation_seconds), for a job on it.
  double network_seconds = 0;
  bool stopped_early = false;
  bool decision_timed_out = false;  ///< stopped because no decision came within the deadline
};
/// Trains on the bundle (public keys only; a secret key anywhere in it is refused).
/// With resume, continues from the last checkpoint. `lower_network`: the server's private
/// model file (nn::save_lower_network), which a job with cfg.lower_network_dim needs: each
/// batch's features go through it under encryption before the head sees them.
ServerReport server_train(const std::string& bundle_dir, bool insecure, bool resume,
                          const WaitOptions& wait = {}, const std::string& lower_network = {});
/// Answers one inference request (waits for it).
void server_infer(const std::string& bundle_dir, bool insecure, const WaitOptions& wait = {},
                  const std::string& lower_network = {});
/// Encrypted inference with the bundle's model of `epoch` on the test batches `inputs` (rows[b]
/// rows each), the logits written to `outputs` (what server_infer does for one request).
void server_infer_batches(const std::string& bundle_dir, bool insecure, std::size_t epoch,
                          const std::vector<std::size_t>& rows,
                          const std::vector<std::string>& inputs,
                          const std::vector<std::string>& outputs, const Progress& progress = {},
                          const std::string& lower_network = {});

/// A training report as JSON text (what the CLI writes to report.json).
std::string report_json(const ServerReport& r, const WatchResult& w);
/// An SVG line chart of the validation loss and accuracy per epoch.
std::string training_curve_svg(const WatchResult& w, const std::string& title);

}  // namespace hetal::protocol
