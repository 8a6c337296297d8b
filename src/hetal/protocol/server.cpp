// The server role: trains on the bundle's ciphertexts with public keys only, answers encrypted
// inference.
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
#include "hetal/nn/lower_network.h"
#include "hetal/protocol/bundle.h"

namespace hetal::protocol {

using namespace detail;

namespace {
/// Refuses a bundle holding a secret key: the server must never receive one.
void refuse_secret_keys(const fs::path& bundle) {
  if (!fs::is_directory(bundle)) fail(bundle.string() + ": no such bundle directory");
  for (const auto& e : fs::recursive_directory_iterator(bundle)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    unsigned char h[8] = {};
    in.read(reinterpret_cast<char*>(h), 8);
    if (in.gcount() == 8 && std::memcmp(h, "HETL", 4) == 0 && h[6] == 2 && h[7] == 0)
      fail(e.path().string() +
           " is a secret key: the server refuses bundles holding one (the secret key never "
           "leaves the client)");
  }
}

/// The client's answer after an epoch: stop or go on; an "abort" (the client found the run
/// broken) ends the server's run with the client's reason.
bool read_decision(const fs::path& dec) {
  v1::Decision d;
  read_message(dec, d);
  if (!d.abort().empty()) fail("the client stopped the run (" + dec.string() + "): " + d.abort());
  return d.stop();
}

/// Everything the server loads from a bundle.
struct ServerSide {
  Meta meta;
  ckks::Context ctx;
  ckks::Encoder enc{ctx};
  ckks::Evaluator ev{ctx};
  rlwe::PublicKey pk;
  rlwe::RelinKey rlk;
  rlwe::GaloisKeys gk;
  circuits::BootstrapKeys bk;
  std::unique_ptr<circuits::Bootstrapper> boot;
  /// The server's own lower network, when the job trains on its outputs.
  std::unique_ptr<cryptotl::EncryptedLowerNetwork> lower;

  ServerSide(const fs::path& bundle, bool insecure, const std::string& lower_network)
      : meta((refuse_secret_keys(bundle), read_meta(bundle))),
        ctx(open_context(bundle / "keys" / "params.bin", insecure)) {
    if (meta.shape.slots != ctx.max_slots())
      fail((bundle / "meta.json").string() + ": slot count does not match the parameters");
    // Each key file is hashed while it is loaded (one read per file); the id is checked once
    // all four are in.
    core::Sha256 key_hash;
    pk = load_key<rlwe::PublicKey>(ctx, key_path(bundle, 0), &key_hash);
    rlk = load_key<rlwe::RelinKey>(ctx, key_path(bundle, 1), &key_hash);
    gk = load_key<rlwe::GaloisKeys>(ctx, key_path(bundle, 2), &key_hash);
    boot = std::make_unique<circuits::Bootstrapper>(ctx, enc, ev, rlk,
                                                    circuits::BootstrapParameters{});
    try {
      ckks::detail::read_file(
          key_path(bundle, 3), [&](std::istream& in) { bk = boot->load_keys(in); }, &key_hash);
    } catch (const ckks::SerializationError& e) {
      fail(e.what());
    }
    if (key_hash.finish_hex() != meta.key_id)
      fail(bundle.string() +
           "/keys: the keys are not the ones the client generated for this bundle (key id "
           "mismatch)");
    if (const std::size_t d = meta.cfg.lower_network_dim) {
      if (lower_network.empty())
        fail((bundle / "meta.json").string() +
             ": the job trains on the server's lower network of dimension " + std::to_string(d) +
             ", and this server has none (give it the model file: `server train --lower-network`, "
             "`server serve --cryptotl-model`)");
      try {
        const nn::LowerNetwork net = nn::load_lower_network(lower_network);
        if (net.dim != d)
          fail(lower_network + ": the server's lower network takes " + std::to_string(net.dim) +
               " features, the job's data has " + std::to_string(d));
        // Compact diagonals: at N = 2^16 the NTT forms would take gigabytes.
        lower = std::make_unique<cryptotl::EncryptedLowerNetwork>(
            ctx, enc, net, ctx.user_top_level(),
            cryptotl::NetworkOptions{.compact = true, .bias_column = true});
        lower->check_keys(gk);
      } catch (const std::invalid_argument& e) {
        fail(e.what());
      }
    }
  }
  /// A batch's features as the head reads them: the client's ciphertexts, or the lower
  /// network's outputs on them (one ciphertext of `rows` samples; empty blocks come out zero).
  /// `forward` false: only checked (as the network would check them), not run.
  matrix::EncMatrix features(std::vector<ckks::Ciphertext> cts, std::size_t rows,
                             const fs::path& from, bool forward = true) {
    const auto l = train::features_layout(meta.shape, rows);
    if (lower) {
      // (head_shape makes a batch one ciphertext; anything else must not reach the head raw)
      if (cts.size() != 1)
        fail(from.string() + ": " + std::to_string(cts.size()) +
             " feature ciphertexts for the lower network, it takes 1");
      if (cts[0].level() < lower->level())
        fail(from.string() + ": features at level " + std::to_string(cts[0].level()) +
             ", the lower network takes them at " + std::to_string(lower->level()));
      if (std::abs(cts[0].scale / ctx.default_scale() - 1) > 1e-9)
        fail(from.string() + ": features not at the default scale");
      if (forward) {
        const auto t0 = Clock::now();
        try {
          cts[0] = lower->forward(ev, cts[0], rlk, gk, rows);
        } catch (const std::invalid_argument& e) {
          fail(from.string() + ": " + e.what());
        }
        network_seconds += since(t0);
      }
    }
    return as_matrix(l, std::move(cts), from);
  }
  double network_seconds = 0;  ///< spent in features()'s forward passes
  train::EncryptedTrainParams params() const {
    train::EncryptedTrainParams p;
    p.learning_rate = meta.cfg.learning_rate;
    p.optimizer = meta.cfg.optimizer;
    p.weight_bound = meta.cfg.weight_bound;
    return p;
  }
};

void with_error_file(const fs::path& error_file, const std::function<void()>& f) {
  fs::remove(error_file);
  try {
    f();
  } catch (const std::exception& e) {
    std::error_code ec;
    fs::create_directories(error_file.parent_path(), ec);
    std::ofstream(error_file) << e.what() << "\n";
    throw;
  }
}
}  // namespace

ServerReport server_train(const std::string& bundle_dir, bool insecure, bool resume,
                          const WaitOptions& wait, const std::string& lower_network) {
  const fs::path bundle(bundle_dir), sdir = bundle / "server";
  ServerReport rep;
  with_error_file(sdir / "error.txt", [&] {
    const auto t0 = Clock::now();
    ServerSide s(bundle, insecure, lower_network);
    const Meta& m = s.meta;
    fs::create_directories(sdir);
    fs::create_directories(bundle / "epochs");
    // Training and validation data stay on disk: each step reads its own batch, so memory is
    // bounded by the step, not by the data set (issue 13). Every file is read once here, one
    // at a time, so that a malformed one is named before hours of training, not at its step.
    // `forward`: run the lower network on the features (not in the first check of every file).
    const auto load_batch = [&](std::size_t b, bool forward) {
      const fs::path f = bundle / "data" / ("train-" + std::to_string(b) + ".cts");
      const auto xl = train::features_layout(m.shape, m.train_rows[b]);
      const auto yl = train::labels_layout(m.shape, m.train_rows[b]);
      auto cts = load_cts(s.ctx, f, xl.count() + yl.count());
      std::vector<ckks::Ciphertext> y(
          std::make_move_iterator(cts.begin() + static_cast<long>(xl.count())),
          std::make_move_iterator(cts.end()));
      cts.resize(xl.count());
      train::EncryptedBatch eb;
      eb.rows = m.train_rows[b];
      eb.x = s.features(std::move(cts), eb.rows, f, forward);
      eb.y = as_matrix(yl, std::move(y), f);
      return eb;
    };
    const auto load_val = [&](std::size_t b, bool forward) {
      const fs::path f = bundle / "data" / ("val-" + std::to_string(b) + ".cts");
      const auto l = train::features_layout(m.shape, m.val_rows[b]);
      return s.features(load_cts(s.ctx, f, l.count()), m.val_rows[b], f, forward);
    };
    for (std::size_t b = 0; b < m.train_rows.size(); ++b) load_batch(b, false);
    for (std::size_t b = 0; b < m.val_rows.size(); ++b) load_val(b, false);
    train::EncryptedTrainer trainer(s.ctx, s.enc, s.ev, s.rlk, s.gk, *s.boot, s.bk, m.shape,
                                    s.params());
    std::size_t start = 0;
    const fs::path ck = sdir / "checkpoint.json";
    if (resume && fs::exists(ck)) {
      const json j = read_json(ck);
      const auto done = field<std::size_t>(j, "epoch_done", ck);
      train::TrainerState st;
      st.steps = field<std::size_t>(j, "steps", ck);
      st.model = load_cts(s.ctx, sdir / "model.cts", m.shape.compact_count());
      st.look = load_cts(s.ctx, sdir / "look.cts", m.shape.compact_count());
      trainer.set_state(std::move(st));
      start = done + 1;
      rep.resumed_from = start;
    } else {
      ckks::Encryptor pub(s.ctx, s.pk);
      trainer.init(pub);
      // A fresh run: earlier epochs' messages and checkpoints are not this run's. A resumed
      // run killed in its first epoch keeps them (its first logits and their decision may be
      // out already; the redone epoch writes the same logits again).
      if (!resume) {
        fs::remove(ck);
        fs::remove(bundle / "done.json");
        for (const auto& e : fs::directory_iterator(bundle / "epochs")) fs::remove(e.path());
      }
    }
    rep.setup_seconds = since(t0);
    const std::size_t nb = m.train_rows.size(), total = m.cfg.max_epochs * nb;
    // The client's answer after epoch e; with decision_timeout_stops, no answer within the
    // deadline stops the run cleanly (the model so far stays the client's to download).
    const auto decision = [&](std::size_t e) {
      const fs::path dec = epoch_file(bundle, "decision", e, ".json");
      if (!wait_for(dec, wait, {}, !wait.decision_timeout_stops)) {
        rep.decision_timed_out = true;
        return true;
      }
      return read_decision(dec);
    };
    const auto check_cancelled = [&] {
      if (wait.cancelled && wait.cancelled()) fail("cancelled");
    };
    bool stop = false;
    // Killed while waiting for (or after) the last checkpointed epoch's decision.
    if (start > 0) stop = decision(start - 1);
    if (wait.progress) wait.progress(start * nb, total, "training steps");
    for (std::size_t e = start; e < m.cfg.max_epochs && !stop; ++e) {
      const auto te = Clock::now();
      const auto order = train::batch_order(nb, m.cfg.seed, e);
      for (std::size_t i = 0; i < nb; ++i) {
        check_cancelled();
        const auto tl = Clock::now();
        const train::EncryptedBatch batch = load_batch(order[i], true);
        rep.data_seconds += since(tl);
        trainer.step(batch);
        if (wait.progress) wait.progress(e * nb + i + 1, total, "training steps");
      }
      const auto tv = Clock::now();
      std::vector<ckks::Ciphertext> logits;
      for (std::size_t b = 0; b < m.val_rows.size(); ++b)
        for (auto& c : trainer.logits(load_val(b, true)).blocks) logits.push_back(std::move(c.c));
      rep.validation_seconds += since(tv);
      save_cts(s.ctx, trainer.state().model, epoch_file(bundle, "model", e, ".cts"));
      // The epoch's logits before the checkpoint record: a run killed in between redoes the
      // epoch (the same steps, the same logits) instead of waiting for a decision on logits
      // nobody could see.
      save_cts(s.ctx, logits, epoch_file(bundle, "val", e, ".cts"));
      // Checkpoint: the state first, then the record that names it.
      save_cts(s.ctx, trainer.state().model, sdir / "model.cts");
      save_cts(s.ctx, trainer.state().look, sdir / "look.cts");
      write_text(ck, json{{"epoch_done", e}, {"steps", trainer.state().steps}}.dump());
      rep.epoch_seconds.push_back(since(te));
      ++rep.epochs;
      stop = decision(e);
      rep.stopped_early = stop && e + 1 < m.cfg.max_epochs;
    }
    rep.times = trainer.times();
    rep.network_seconds = s.network_seconds;
    write_text(sdir / "report.json", report_json(rep, {}));
    write_text(bundle / "done.json", json{{"epochs", rep.epochs}}.dump());
  });
  return rep;
}

void server_infer_batches(const std::string& bundle_dir, bool insecure, std::size_t epoch,
                          const std::vector<std::size_t>& rows,
                          const std::vector<std::string>& inputs,
                          const std::vector<std::string>& outputs, const Progress& progress,
                          const std::string& lower_network) {
  const fs::path bundle(bundle_dir);
  ServerSide s(bundle, insecure, lower_network);
  if (inputs.size() != rows.size() || outputs.size() != rows.size())
    fail("inference: " + std::to_string(rows.size()) + " batch sizes for " +
         std::to_string(inputs.size()) + " batches");
  if (epoch >= s.meta.cfg.max_epochs) fail("inference: no epoch " + std::to_string(epoch + 1));
  const fs::path mf = epoch_file(bundle, "model", epoch, ".cts");
  if (!fs::exists(mf)) fail("inference: epoch " + std::to_string(epoch + 1) + " has no model yet");
  const auto model = load_cts(s.ctx, mf, s.meta.shape.compact_count());
  train::EncryptedTrainer trainer(s.ctx, s.enc, s.ev, s.rlk, s.gk, *s.boot, s.bk, s.meta.shape,
                                  s.params());
  if (progress) progress(0, rows.size(), "test batches");
  for (std::size_t b = 0; b < rows.size(); ++b) {
    if (rows[b] == 0 || rows[b] > s.meta.shape.batch)
      fail("inference: a batch size is out of range");
    const fs::path f = inputs[b];
    const auto l = train::features_layout(s.meta.shape, rows[b]);
    std::vector<ckks::Ciphertext> out;
    for (auto& c :
         trainer.logits(s.features(load_cts(s.ctx, f, l.count()), rows[b], f), &model).blocks)
      out.push_back(std::move(c.c));
    save_cts(s.ctx, out, outputs[b]);
    if (progress) progress(b + 1, rows.size(), "test batches");
  }
}

void server_infer(const std::string& bundle_dir, bool insecure, const WaitOptions& wait,
                  const std::string& lower_network) {
  const fs::path bundle(bundle_dir), dir = bundle / "infer";
  with_error_file(bundle / "server" / "infer-error.txt", [&] {
    if (!fs::is_directory(bundle)) fail(bundle.string() + ": no such bundle directory");
    wait_for(dir / "request.json", wait, {});
    v1::InferRequest req;
    read_message(dir / "request.json", req);
    const std::size_t epoch = req.epoch();
    const std::vector<std::size_t> rows(req.rows().begin(), req.rows().end());
    std::vector<std::string> in, out;
    for (std::size_t b = 0; b < rows.size(); ++b) {
      in.push_back((dir / ("x-" + std::to_string(b) + ".cts")).string());
      out.push_back((dir / ("logits-" + std::to_string(b) + ".cts")).string());
    }
    server_infer_batches(bundle_dir, insecure, epoch, rows, in, out, wait.progress, lower_network);
    write_text(dir / "done.json", "{}");
  });
}

}  // namespace hetal::protocol
