// The client role: keys, encryption, the per-epoch answers, decryption and encrypted inference.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "hetal/ckks/encryptor.h"
#include "hetal/ckks/keygen.h"
#include "hetal/ckks/serialization.h"
#include "hetal/cryptotl/encrypted_network.h"
#include "hetal/protocol/bundle.h"

namespace hetal::protocol {

using namespace detail;

namespace {
ckks::Preset preset_from_name(const std::string& name) {
  if (name == "T13") return ckks::Preset::T13;
  if (name == "T14") return ckks::Preset::T14;
  if (name == "B16-H192") return ckks::Preset::B16_H192;
  if (name == "TB13-INSECURE") return ckks::Preset::TB13_INSECURE;
  fail("unknown preset '" + name + "' (choose B16-H192 or, for tests, TB13-INSECURE)");
}

/// What the client keeps: config.json, params, secret key.
struct ClientState {
  TrainConfig cfg;
  std::size_t features = 0, classes = 0;
  std::string key_id;
};

ClientState read_client(const fs::path& client) {
  const fs::path p = client / "config.json";
  if (!fs::exists(p)) fail(p.string() + ": missing (run `hetal client keygen` first)");
  const json j = read_json(p);
  ClientState s;
  s.cfg = config_from(field<json>(j, "config", p), p);
  s.features = field<std::size_t>(j, "features", p);
  s.classes = field<std::size_t>(j, "classes", p);
  s.key_id = field<std::string>(j, "key_id", p);
  return s;
}

matrix::Matrix rows_of(const matrix::Matrix& m, std::size_t r0, std::size_t n) {
  matrix::Matrix out(n, m.cols);
  std::copy_n(m.data.begin() + static_cast<long>(r0 * m.cols), n * m.cols, out.data.begin());
  return out;
}

/// Encrypts m (rows x cols) in `layout` as seeded ciphertexts at `level`.
std::vector<ckks::SeededCiphertext> encrypt_seeded(const ckks::Context& ctx,
                                                   const ckks::Encoder& enc,
                                                   ckks::Encryptor& encryptor,
                                                   const matrix::Layout& layout,
                                                   const matrix::Matrix& m, std::size_t level) {
  std::vector<ckks::SeededCiphertext> out;
  for (const auto& pt : matrix::encode(enc, ctx, layout, m, level))
    out.push_back(encryptor.encrypt_seeded(pt));
  return out;
}

/// What the client encrypts of a features matrix: [x, 1] for the head itself, the raw x when
/// the server's lower network runs first (its outputs get the bias column under encryption).
matrix::Matrix inputs_of(const TrainConfig& cfg, const matrix::Matrix& x) {
  return cfg.lower_network_dim ? x : train::with_bias(x);
}

/// The level of validation and test features: DiagABT's; with the lower network the top level,
/// as for training (the server builds its network once, at the level of its inputs).
std::size_t features_level(const TrainConfig& cfg, const ckks::Context& ctx) {
  return cfg.lower_network_dim ? ctx.params().user_top_level()
                               : train::EncryptedTrainer::kInferenceLevel;
}

/// A batch of features (rows_of(inputs_of(x))) as seeded ciphertexts: in the head's layout, or
/// one sample per block of the lower network's packing (the same blocks, one ciphertext).
std::vector<ckks::SeededCiphertext> encrypt_features(
    const ckks::Context& ctx, const ckks::Encoder& enc, ckks::Encryptor& encryptor,
    const TrainConfig& cfg, const train::Shape& shape, const matrix::Matrix& x, std::size_t level) {
  if (!cfg.lower_network_dim)
    return encrypt_seeded(ctx, enc, encryptor, train::features_layout(shape, x.rows), x, level);
  const cryptotl::Packing pk(cfg.lower_network_dim, shape.slots);
  const std::vector<float> xf(x.data.begin(), x.data.end());
  const std::vector<double> v = pk.pack(xf, 0, x.rows, shape.slots);
  std::vector<ckks::SeededCiphertext> out;
  out.push_back(
      encryptor.encrypt_seeded(enc.encode(std::span<const double>(v), level, ctx.default_scale())));
  return out;
}

/// Decrypts ciphertexts in `layout`.
matrix::Matrix decrypt_matrix(const ckks::Context& ctx, const rlwe::SecretKey& sk,
                              const matrix::Layout& layout, std::vector<ckks::Ciphertext> cts,
                              const fs::path& from) {
  const ckks::Encoder enc(ctx);
  const ckks::Decryptor dec(ctx, sk);
  return matrix::decrypt(enc, dec, as_matrix(layout, std::move(cts), from));
}

/// The epoch whose model the client keeps (written by client_watch).
std::size_t best_epoch(const fs::path& client) {
  const fs::path hp = client / "history.json";
  if (!fs::exists(hp)) fail(hp.string() + ": missing (run `hetal client watch` first)");
  return field<std::size_t>(read_json(hp), "best_epoch", hp);
}
}  // namespace

std::size_t lower_network_batch(const std::string& preset, std::size_t dim) {
  const std::size_t slots = std::size_t{1}
                            << (ckks::Parameters::preset(preset_from_name(preset)).log_n - 1);
  try {
    return cryptotl::Packing(dim, slots).per_ciphertext;
  } catch (const std::invalid_argument& e) {
    fail(e.what());
  }
}

TrainConfig client_config(const std::string& client_dir) { return read_client(client_dir).cfg; }

double client_keygen(const std::string& client_dir, const std::string& bundle_dir,
                     const TrainConfig& cfg, std::size_t features, std::size_t classes,
                     bool insecure) {
  const auto t0 = Clock::now();
  const fs::path client(client_dir), bundle(bundle_dir);
  fs::create_directories(client);
  fs::create_directories(bundle / "keys");
  ckks::Context ctx = [&] {
    try {
      return ckks::Context(
          ckks::Parameters::preset(preset_from_name(cfg.preset)),
          insecure ? ckks::SecurityPolicy::allow_insecure : ckks::SecurityPolicy::require_128);
    } catch (const ProtocolError&) {
      throw;
    } catch (const std::exception& e) {
      fail(std::string("preset ") + cfg.preset + ": " + e.what());
    }
  }();
  const train::Shape shape = head_shape(cfg, features, classes, ctx.max_slots());
  ckks::save_parameters_file(ctx.params(), (client / "params.bin").string());
  ckks::save_parameters_file(ctx.params(), (bundle / "keys" / "params.bin").string());
  core::Sha256 key_hash;
  {
    ckks::KeyGenerator kg(ctx);
    const rlwe::SecretKey sk = kg.secret_key();
    ckks::save_file(ctx, sk, (client / "secret.key").string());  // mode 0600
    // The key id is the SHA-256 of the key files in kKeyFiles order, taken as they are written.
    ckks::save_file(ctx, kg.public_key(sk), key_path(bundle, 0), &key_hash);
    const rlwe::RelinKey rlk = kg.relin_key(sk);
    ckks::save_file(ctx, rlk, key_path(bundle, 1), &key_hash);
    const ckks::Encoder enc(ctx);
    {
      std::vector<long long> steps = train::EncryptedTrainer::rotations(shape);
      if (cfg.lower_network_dim) {
        // The lower network's rotations follow from its dimension alone: the weights stay the
        // server's.
        for (long long r : cryptotl::required_rotations(ctx, enc, cfg.lower_network_dim))
          if (std::find(steps.begin(), steps.end(), r) == steps.end()) steps.push_back(r);
      }
      const rlwe::GaloisKeys gk = kg.galois_keys(sk, steps, true, ctx.params().user_top_level());
      ckks::save_file(ctx, gk, key_path(bundle, 2), &key_hash);
    }
    const ckks::Evaluator ev(ctx);
    const circuits::Bootstrapper boot(ctx, enc, ev, rlk, {});
    const circuits::BootstrapKeys bk = boot.generate_keys(kg, sk);
    ckks::detail::write_file_atomically(
        key_path(bundle, 3), false, [&](std::ostream& out) { boot.save_keys(bk, out); }, &key_hash);
  }
  const json j = {{"config", config_json(cfg)},
                  {"features", features},
                  {"classes", classes},
                  {"key_id", key_hash.finish_hex()}};
  write_text(client / "config.json", j.dump(2));
  return since(t0);
}

UploadSummary client_encrypt(const std::string& client_dir, const std::string& bundle_dir,
                             const train::Dataset& all, const std::string& description,
                             bool insecure, const Progress& progress) {
  const auto t0 = Clock::now();
  const fs::path client(client_dir), bundle(bundle_dir);
  const ClientState cs = read_client(client);
  try {
    all.validate();
  } catch (const std::invalid_argument& e) {
    fail(e.what());
  }
  if (all.x.cols != cs.features || all.classes != cs.classes)
    fail("the data has " + std::to_string(all.x.cols) + " features and " +
         std::to_string(all.classes) + " classes; the keys were made for " +
         std::to_string(cs.features) + " and " + std::to_string(cs.classes));
  const ckks::Context ctx = open_context(client / "params.bin", insecure);
  const auto sk = load_key<rlwe::SecretKey>(ctx, client / "secret.key");
  const train::Shape shape = head_shape(cs.cfg, cs.features, cs.classes, ctx.max_slots());
  auto [tr, va] = train::split(all, cs.cfg.validation_fraction, cs.cfg.seed);
  // A new upload starts a new session: nothing of an earlier run may be mistaken for this one's.
  for (const char* old : {"epochs", "server", "infer", "data", "done.json", "meta.json"})
    fs::remove_all(bundle / old);
  const ckks::Encoder enc(ctx);
  ckks::Encryptor encryptor(ctx, sk);
  fs::create_directories(bundle / "data");
  UploadSummary sum;
  sum.train_rows = tr.x.rows;
  sum.validation_rows = va.x.rows;
  const std::size_t top = ctx.params().user_top_level(), B = shape.batch;
  const matrix::Matrix xt = inputs_of(cs.cfg, tr.x), yt = train::one_hot(tr.y, cs.classes);
  const matrix::Matrix xv = inputs_of(cs.cfg, va.x);
  std::vector<std::size_t> train_rows, val_rows;
  const std::size_t nb = (tr.x.rows + B - 1) / B, nv = (va.x.rows + B - 1) / B;
  if (progress) progress(0, nb + nv, "batches encrypted");
  for (std::size_t b = 0; b < nb + nv; ++b) {
    const bool is_train = b < nb;
    const std::size_t r0 = (is_train ? b : b - nb) * B;
    const std::size_t n = std::min(B, (is_train ? tr.x.rows : va.x.rows) - r0);
    std::vector<ckks::SeededCiphertext> cts;
    if (is_train) {
      cts = encrypt_features(ctx, enc, encryptor, cs.cfg, shape, rows_of(xt, r0, n), top);
      auto y = encrypt_seeded(ctx, enc, encryptor, train::labels_layout(shape, n),
                              rows_of(yt, r0, n), top);
      for (auto& c : y) cts.push_back(std::move(c));
      train_rows.push_back(n);
    } else {
      cts = encrypt_features(ctx, enc, encryptor, cs.cfg, shape, rows_of(xv, r0, n),
                             features_level(cs.cfg, ctx));
      val_rows.push_back(n);
    }
    const fs::path f =
        bundle / "data" /
        ((is_train ? "train-" + std::to_string(b) : "val-" + std::to_string(b - nb)) + ".cts");
    save_cts(ctx, cts, f);
    sum.ciphertexts += cts.size();
    sum.bytes += fs::file_size(f);
    if (progress) progress(b + 1, nb + nv, "batches encrypted");
  }
  sum.train_batches = nb;
  write_text(client / "validation.json", json{{"labels", va.y}}.dump());
  Meta meta;
  meta.cfg = cs.cfg;
  meta.shape = shape;
  meta.train_rows = train_rows;
  meta.val_rows = val_rows;
  meta.key_id = cs.key_id;
  meta.description = description;
  write_message(bundle / "meta.json", spec_of(meta));
  sum.seconds = since(t0);
  return sum;
}

WatchResult client_watch(const std::string& client_dir, const std::string& bundle_dir,
                         bool insecure, const WaitOptions& wait) {
  return client_watch(client_dir, *directory_link(bundle_dir), insecure, wait);
}

WatchResult client_watch(const std::string& client_dir, ServerLink& link, bool insecure,
                         const WaitOptions& wait) {
  const fs::path client(client_dir), bundle(link.bundle());
  const ClientState cs = read_client(client);
  const Meta meta = read_meta(bundle);
  if (meta.key_id != cs.key_id) fail("the bundle was not made with this client's keys");
  const ckks::Context ctx = open_context(client / "params.bin", insecure);
  const auto sk = load_key<rlwe::SecretKey>(ctx, client / "secret.key");
  const auto labels = field<std::vector<std::size_t>>(read_json(client / "validation.json"),
                                                      "labels", client / "validation.json");
  WatchResult res;
  double best = std::numeric_limits<double>::infinity();
  std::size_t since_best = 0;
  for (std::size_t e = 0; e < meta.cfg.max_epochs; ++e) {
    const fs::path vf = epoch_file(bundle, "val", e, ".cts");
    link.await_epoch(e, wait);
    // All validation batches' logits, in order.
    std::size_t blocks = 0;
    for (std::size_t r : meta.val_rows) blocks += train::logits_layout(meta.shape, r).count();
    auto cts = load_cts(ctx, vf, blocks);
    matrix::Matrix logits(labels.size(), meta.shape.classes);
    std::size_t at = 0, row = 0;
    for (std::size_t r : meta.val_rows) {
      const auto l = train::logits_layout(meta.shape, r);
      std::vector<ckks::Ciphertext> part(
          std::make_move_iterator(cts.begin() + static_cast<long>(at)),
          std::make_move_iterator(cts.begin() + static_cast<long>(at + l.count())));
      at += l.count();
      const matrix::Matrix m = decrypt_matrix(ctx, sk, l, std::move(part), vf);
      std::copy(m.data.begin(), m.data.end(),
                logits.data.begin() + static_cast<long>(row * logits.cols));
      row += r;
    }
    if (row != labels.size()) fail(vf.string() + ": validation rows do not match the labels");
    EpochResult er;
    er.epoch = e;
    std::tie(er.validation_loss, er.validation_accuracy) =
        train::logits_loss_accuracy(logits, labels);
    // A run that cannot go on is stopped on both sides: the decision tells the server why (so it
    // exits with the reason instead of waiting), then the client fails with it.
    const auto abort_run = [&](const std::string& why) {
      link.decide(e, true, why);
      fail(vf.string() + ": " + why);
    };
    if (!std::isfinite(er.validation_loss))
      abort_run("the validation logits do not decrypt to finite values");
    // The server's softmax approximates on [-R, R] only; logits beyond it mean the training
    // steps' softmax left its range too and the model is garbage.
    try {
      train::check_logit_range(logits.data);
    } catch (const train::LogitRangeError& err) {
      abort_run("epoch " + std::to_string(e + 1) + ": " + err.what() +
                ": training diverged; lower the learning rate (if `hetal reference` with the same "
                "options stays in range, an encrypted step failed instead)");
    }
    if (er.validation_loss < best) {
      best = er.validation_loss;
      res.best_epoch = e;
      since_best = 0;
    } else {
      ++since_best;
    }
    er.stop =
        (meta.cfg.patience && since_best >= meta.cfg.patience) || e + 1 == meta.cfg.max_epochs;
    res.epochs.push_back(er);
    json hist = json::array();
    for (const auto& x : res.epochs)
      hist.push_back({{"epoch", x.epoch},
                      {"validation_loss", x.validation_loss},
                      {"validation_accuracy", x.validation_accuracy}});
    write_text(client / "history.json",
               json{{"epochs", hist}, {"best_epoch", res.best_epoch}}.dump(2));
    link.decide(e, er.stop, "");
    if (wait.progress) wait.progress(e + 1, meta.cfg.max_epochs, "epochs answered");
    if (er.stop) break;
  }
  link.await_done(wait);
  return res;
}

matrix::Matrix client_decrypt_model(const std::string& client_dir, const std::string& bundle_dir,
                                    bool insecure) {
  return client_decrypt_model(client_dir, *directory_link(bundle_dir), insecure);
}

matrix::Matrix client_decrypt_model(const std::string& client_dir, ServerLink& link,
                                    bool insecure) {
  const fs::path client(client_dir), bundle(link.bundle());
  const ClientState cs = read_client(client);
  const Meta meta = read_meta(bundle);
  const ckks::Context ctx = open_context(client / "params.bin", insecure);
  const auto sk = load_key<rlwe::SecretKey>(ctx, client / "secret.key");
  const std::size_t best = best_epoch(client);
  link.fetch_model(best);
  const fs::path mf = epoch_file(bundle, "model", best, ".cts");
  const auto cts = load_cts(ctx, mf, meta.shape.compact_count());
  const ckks::Encoder enc(ctx);
  const ckks::Decryptor dec(ctx, sk);
  std::vector<std::vector<double>> slots;
  for (const auto& c : cts) slots.push_back(enc.decode_real(dec.decrypt(c)));
  return train::unpack_compact(meta.shape, slots, cs.cfg.weight_bound);
}

matrix::Matrix client_predict_encrypted(const std::string& client_dir,
                                        const std::string& bundle_dir, const matrix::Matrix& x,
                                        bool insecure, const WaitOptions& wait) {
  return client_predict_encrypted(client_dir, *directory_link(bundle_dir), x, insecure, wait);
}

matrix::Matrix client_predict_encrypted(const std::string& client_dir, ServerLink& link,
                                        const matrix::Matrix& x, bool insecure,
                                        const WaitOptions& wait) {
  const fs::path client(client_dir), bundle(link.bundle()), dir = bundle / "infer";
  const ClientState cs = read_client(client);
  const Meta meta = read_meta(bundle);
  if (x.cols != cs.features)
    fail("the test data has " + std::to_string(x.cols) + " features, the model " +
         std::to_string(cs.features));
  const ckks::Context ctx = open_context(client / "params.bin", insecure);
  const auto sk = load_key<rlwe::SecretKey>(ctx, client / "secret.key");
  const std::size_t best = best_epoch(client);
  fs::remove_all(dir);
  fs::create_directories(dir);
  const ckks::Encoder enc(ctx);
  ckks::Encryptor encryptor(ctx, sk);
  const matrix::Matrix xb = inputs_of(cs.cfg, x);
  const std::size_t B = meta.shape.batch, nb = (x.rows + B - 1) / B;
  std::vector<std::size_t> rows;
  if (wait.progress) wait.progress(0, nb, "test batches encrypted");
  for (std::size_t b = 0; b < nb; ++b) {
    const std::size_t n = std::min(B, x.rows - b * B);
    save_cts(ctx,
             encrypt_features(ctx, enc, encryptor, cs.cfg, meta.shape, rows_of(xb, b * B, n),
                              features_level(cs.cfg, ctx)),
             dir / ("x-" + std::to_string(b) + ".cts"));
    rows.push_back(n);
    if (wait.progress) wait.progress(b + 1, nb, "test batches encrypted");
  }
  link.infer(best, rows, wait);
  matrix::Matrix out(x.rows, cs.classes);
  for (std::size_t b = 0; b < nb; ++b) {
    const auto l = train::logits_layout(meta.shape, rows[b]);
    const fs::path f = dir / ("logits-" + std::to_string(b) + ".cts");
    const matrix::Matrix m = decrypt_matrix(ctx, sk, l, load_cts(ctx, f, l.count()), f);
    std::copy(m.data.begin(), m.data.end(), out.data.begin() + static_cast<long>(b * B * out.cols));
  }
  return out;
}

}  // namespace hetal::protocol
