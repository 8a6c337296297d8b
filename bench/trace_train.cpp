// Encrypted training traced against its plain simulation, step by step, with the secret key in
// the same process (a debugging harness: a server never holds the key). After every step it
// decrypts the step's intermediates (StepProbe: logits, P - Y, gradient, the update before its
// bootstrap) and the refreshed model, and prints the largest deviation from the plain
// simulation (train::plain_step, SoftmaxKind::simulation) at each stage, so that the first step
// and the first stage where an encrypted run leaves its simulation can be read off.
//
// The data path follows the protocol's: standard z-scores fitted on all rows, HETAL's
// 87.5 / 12.5 split (seed 0), consecutive rows as fixed batches visited in batch_order().
//
//   build/bench/trace_train --features F.npy --labels L.npy --steps 52 --lr 0.3
//   build/bench/trace_train --features F.npy --labels L.npy --preset TB13-INSECURE --batch 128
// Exit status 1 if a stage's deviation exceeds --fail (default 1e-2).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "bench_util.h"
#include "hetal/ckks/encryptor.h"
#include "hetal/ckks/keygen.h"
#include "hetal/train/data_io.h"
#include "hetal/train/datasets.h"
#include "hetal/train/encrypted_trainer.h"
#include "trainer_keys.h"

using namespace hetal;

namespace {

train::Dataset rows_of(const train::Dataset& d, std::size_t first, std::size_t count) {
  train::Dataset out;
  out.classes = d.classes;
  out.x = matrix::Matrix(count, d.x.cols);
  std::copy_n(d.x.data.begin() + static_cast<long>(first * d.x.cols), count * d.x.cols,
              out.x.data.begin());
  out.y.assign(d.y.begin() + static_cast<long>(first),
               d.y.begin() + static_cast<long>(first + count));
  return out;
}

/// max |a - b| over the first rows x cols entries, and the row where it is reached.
std::pair<double, std::size_t> max_abs_diff_rows(const matrix::Matrix& a, const matrix::Matrix& b,
                                                 std::size_t rows, std::size_t cols) {
  double m = 0;
  std::size_t at = 0;
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < cols; ++j) {
      double v = std::abs(a(r, j) - b(r, j));
      if (std::isnan(v)) v = INFINITY;
      if (v > m) m = v, at = r;
    }
  return {m, at};
}

void print_row(const char* what, const matrix::Matrix& m, std::size_t r, std::size_t cols) {
  std::printf("    %-16s row %4zu:", what, r);
  for (std::size_t j = 0; j < cols; ++j) std::printf(" %+.6f", m(r, j));
  std::printf("\n");
}

}  // namespace

int run(int argc, char** argv) {
  std::string features, labels;
  bool insecure = false;
  std::size_t steps = 8, batch = 1024, limit = 0;
  double lr = 0.3, fail = 1e-2;
  for (int i = 1; i < argc; ++i) {
    const auto arg = [&](const char* name) { return !std::strcmp(argv[i], name) && i + 1 < argc; };
    if (arg("--features"))
      features = argv[++i];
    else if (arg("--labels"))
      labels = argv[++i];
    else if (arg("--preset") &&
             (!std::strcmp(argv[i + 1], "B16-H192") || !std::strcmp(argv[i + 1], "TB13-INSECURE")))
      insecure = !std::strcmp(argv[++i], "TB13-INSECURE");
    else if (arg("--steps"))
      steps = std::stoul(argv[++i]);
    else if (arg("--batch"))
      batch = std::stoul(argv[++i]);
    else if (arg("--limit"))
      limit = std::stoul(argv[++i]);
    else if (arg("--lr"))
      lr = std::stod(argv[++i]);
    else if (arg("--fail"))
      fail = std::stod(argv[++i]);
    else {
      std::fprintf(stderr,
                   "usage: trace_train --features F --labels L [--preset B16-H192|TB13-INSECURE] "
                   "[--steps n] [--batch b] [--limit rows] [--lr x] [--fail tolerance]\n");
      return 2;
    }
  }
  if (features.empty() || labels.empty()) {
    std::fprintf(stderr, "trace_train: --features and --labels are required\n");
    return 2;
  }
  using namespace hetal::ckks;
  using bench::Clock;
  using bench::seconds_since;

  train::Dataset all;
  all.x = train::load_matrix(features);
  all.y = train::load_labels(labels);
  if (limit && limit < all.x.rows) {
    all.x.rows = limit;
    all.x.data.resize(limit * all.x.cols);
    all.y.resize(limit);
  }
  if (all.y.size() != all.x.rows)
    throw std::invalid_argument(labels + ": " + std::to_string(all.y.size()) + " labels for " +
                                std::to_string(all.x.rows) + " feature rows");
  if (all.y.empty()) throw std::invalid_argument(features + ": no rows");
  all.classes = *std::max_element(all.y.begin(), all.y.end()) + 1;
  train::FeatureScaler::fit(all.x, train::Normalization::standard).apply(all.x);
  const train::Dataset tr = train::split(all, 0.125, 0).first;

  const bench::TrainerKeys keys(insecure, [&](std::size_t slots) {
    return train::Shape{tr.x.cols, tr.classes, batch, slots};
  });
  const Context& ctx = keys.ctx;
  const Encoder& enc = keys.enc;
  const SecretKey& sk = keys.sk;
  const PublicKey& pk = keys.pk;
  const train::Shape shape{tr.x.cols, tr.classes, batch, ctx.max_slots()};
  shape.validate();
  std::printf(
      "trace_train: %s, %d threads, %zu training rows (%zu-d, %zu classes), batch %zu, "
      "lr %g; keygen %.1f s\n",
      insecure ? "TB13-INSECURE" : "B16-H192", omp_get_max_threads(), tr.x.rows, tr.x.cols,
      tr.classes, batch, lr, keys.keygen_seconds);
  Encryptor encryptor(ctx, sk), pub(ctx, pk);
  const Decryptor dec(ctx, sk);
  train::EncryptedTrainParams etp;
  etp.learning_rate = lr;
  train::EncryptedTrainer trainer(ctx, enc, keys.ev, keys.rlk, keys.gk, keys.boot, keys.bk, shape,
                                  etp);
  trainer.init(pub);

  train::TrainParams tp;
  tp.learning_rate = lr;
  tp.batch = batch;
  tp.softmax = train::SoftmaxKind::simulation;
  const std::size_t c = tr.classes, cols = tr.x.cols + 1;
  train::PlainState ps{matrix::Matrix(c, cols), matrix::Matrix(c, cols)};

  const std::size_t nb = (tr.x.rows + batch - 1) / batch;
  int status = 0;
  for (std::size_t k = 0; k < steps; ++k) {
    const std::size_t epoch = k / nb, bi = train::batch_order(nb, 0, epoch)[k % nb];
    const std::size_t b0 = bi * batch, bn = std::min(batch, tr.x.rows - b0);
    const train::Dataset b = rows_of(tr, b0, bn);
    // The plain step's intermediates, from the same lookahead point.
    const matrix::Matrix xb = train::with_bias(b.x);
    const matrix::Matrix z_plain = matrix::multiply_abt(xb, ps.look);
    matrix::Matrix pmy = train::predict(ps.look, b.x, tp.softmax);
    for (std::size_t r = 0; r < bn; ++r) pmy(r, b.y[r]) -= 1;
    const matrix::Matrix g_plain = matrix::multiply_atb(pmy, xb);
    train::plain_step(ps, b, tp);

    train::EncryptedBatch eb;
    eb.rows = bn;
    eb.x = matrix::encrypt(enc, encryptor, ctx, train::features_layout(shape, bn), xb,
                           trainer.data_level());
    eb.y = matrix::encrypt(enc, encryptor, ctx, train::labels_layout(shape, bn),
                           train::one_hot(b.y, c), trainer.data_level());
    double dev[5] = {}, mag[5] = {};
    matrix::Matrix z_enc, pmy_enc;
    std::size_t worst_row = 0;
    const auto unpack = [&](const std::vector<Ciphertext>& cts) {
      std::vector<std::vector<double>> slots;
      for (const auto& ct : cts) slots.push_back(enc.decode_real(dec.decrypt(ct)));
      return train::unpack_compact(shape, slots, etp.weight_bound);
    };
    train::StepProbe probe;
    probe.matrix = [&](std::string_view stage, const matrix::EncMatrix& m) {
      const matrix::Matrix v = matrix::decrypt(enc, dec, m);
      if (stage == "logits") {
        dev[0] = max_abs_diff_rows(v, z_plain, bn, c).first, mag[0] = matrix::max_abs(z_plain);
        z_enc = v;
      } else if (stage == "p_minus_y") {
        std::tie(dev[1], worst_row) = max_abs_diff_rows(v, pmy, bn, c);
        mag[1] = matrix::max_abs(pmy);
        pmy_enc = v;
      } else if (stage == "gradient") {
        dev[2] = max_abs_diff_rows(v, g_plain, c, cols).first, mag[2] = matrix::max_abs(g_plain);
      }
    };
    probe.compact = [&](std::string_view, const std::vector<Ciphertext>& both) {
      const std::size_t n = shape.compact_count();
      const std::vector<Ciphertext> xs(both.begin(), both.begin() + static_cast<long>(n));
      const std::vector<Ciphertext> ls(both.begin() + static_cast<long>(n), both.end());
      dev[3] = std::max(matrix::max_abs_diff(unpack(xs), ps.x),
                        matrix::max_abs_diff(unpack(ls), ps.look));
      mag[3] = ps.max_abs;
    };
    trainer.set_probe(probe);
    const auto t0 = Clock::now();
    trainer.step(eb);  // the probes' decryptions included
    const double secs = seconds_since(t0);
    dev[4] = std::max(matrix::max_abs_diff(unpack(trainer.state().model), ps.x),
                      matrix::max_abs_diff(unpack(trainer.state().look), ps.look));
    mag[4] = ps.max_abs;
    std::printf(
        "step %3zu (batch %2zu, %4zu rows, %5.1f s): deviation (of max |plain|) logits "
        "%.1e (%.1f)  P-Y %.1e (%.2f)  gradient %.1e (%.1f)  update %.1e  bootstrapped "
        "%.1e (|W| %.3f)\n",
        k + 1, bi, bn, secs, dev[0], mag[0], dev[1], mag[1], dev[2], mag[2], dev[3], dev[4],
        mag[4]);
    if (dev[1] > fail) {  // the row where the softmax deviates most
      print_row("logits (plain)", z_plain, worst_row, c);
      print_row("logits (enc)", z_enc, worst_row, c);
      print_row("P - Y (plain)", pmy, worst_row, c);
      print_row("P - Y (enc)", pmy_enc, worst_row, c);
    }
    std::fflush(stdout);
    for (int s = 0; s < 5; ++s) {
      const double tol = s == 0 ? fail * std::max(1.0, mag[0]) : s == 2 ? fail * bn : fail;
      if (!(dev[s] <= tol)) status = 1;
    }
  }
  return status;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {  // unreadable or malformed files, bad numbers, shapes
    std::fprintf(stderr, "trace_train: error: %s\n", e.what());
    return 2;
  }
}
