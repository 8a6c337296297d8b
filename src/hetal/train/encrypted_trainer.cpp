#include "hetal/train/encrypted_trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>
#include <stdexcept>
#include <string>

#include "hetal/matrix/matmul.h"

namespace hetal::train {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::size_t ceil_div(std::size_t a, std::size_t b) { return (a + b - 1) / b; }

/// Baby-step size for gathering / scattering m units: rotations by a * g * unit (giant) and
/// b * unit (baby), b < g, instead of one key per unit.
std::size_t giant(std::size_t m) {
  return std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(std::sqrt(double(m)))));
}
}  // namespace

// ------------------------------------------------------------------------------- Shape

matrix::BlockShape Shape::block() const {
  return matrix::training_block_shape(batch, classes, slots);
}
std::size_t Shape::w_blocks() const { return ceil_div(cols(), block().s1); }
std::size_t Shape::compact_count() const { return ceil_div(w_blocks(), per_compact()); }

void Shape::validate() const {
  if (features == 0) throw std::invalid_argument("shape: no features");
  if (classes < 2) throw std::invalid_argument("shape: needs at least 2 classes");
  if (batch == 0) throw std::invalid_argument("shape: batch size 0");
  if (slots == 0 || (slots & (slots - 1)))
    throw std::invalid_argument("shape: slot count must be a power of two");
  if (c_pad() > slots) throw std::invalid_argument("shape: more classes than slots");
  if (batch > block().s0) {
    throw std::invalid_argument("shape: batch " + std::to_string(batch) +
                                " exceeds the block height " + std::to_string(block().s0) +
                                " that " + std::to_string(slots) + " slots allow for " +
                                std::to_string(classes) + " classes");
  }
}

// ----------------------------------------------------------------------- client packing

matrix::Matrix with_bias(const matrix::Matrix& x) {
  matrix::Matrix out(x.rows, x.cols + 1);
  for (std::size_t r = 0; r < x.rows; ++r) {
    std::copy_n(x.data.begin() + static_cast<long>(r * x.cols), x.cols,
                out.data.begin() + static_cast<long>(r * out.cols));
    out(r, x.cols) = 1.0;
  }
  return out;
}

matrix::Matrix one_hot(const std::vector<std::size_t>& labels, std::size_t classes) {
  matrix::Matrix y(labels.size(), classes);
  for (std::size_t r = 0; r < labels.size(); ++r) {
    if (labels[r] >= classes)
      throw std::invalid_argument("one_hot: label " + std::to_string(labels[r]) + " of row " +
                                  std::to_string(r) + " is not below " + std::to_string(classes));
    y(r, labels[r]) = 1.0;
  }
  return y;
}

matrix::Layout features_layout(const Shape& s, std::size_t rows) {
  return matrix::Layout::blocks(rows, s.cols(), s.block());
}
matrix::Layout labels_layout(const Shape& s, std::size_t rows) {
  return matrix::Layout::tiled_cols(rows, s.classes, s.block());
}
matrix::Layout logits_layout(const Shape& s, std::size_t rows) {
  return matrix::Layout::blocks(rows, s.classes, s.block());
}

std::vector<std::vector<double>> pack_compact(const Shape& s, const matrix::Matrix& w,
                                              double bound) {
  if (w.rows != s.classes || w.cols != s.cols())
    throw std::invalid_argument("pack_compact: weights are not classes x (features + 1)");
  const std::size_t s1 = s.block().s1, unit = s.unit(), per = s.per_compact();
  std::vector<std::vector<double>> out(s.compact_count(), std::vector<double>(s.slots, 0.0));
  for (std::size_t j = 0; j < s.w_blocks(); ++j)
    for (std::size_t r = 0; r < s.classes; ++r)
      for (std::size_t t = 0; t < s1 && j * s1 + t < s.cols(); ++t)
        out[j / per][(j % per) * unit + r * s1 + t] = w(r, j * s1 + t) / bound;
  return out;
}

matrix::Matrix unpack_compact(const Shape& s, const std::vector<std::vector<double>>& slots,
                              double bound) {
  if (slots.size() != s.compact_count())
    throw std::invalid_argument("unpack_compact: expected " + std::to_string(s.compact_count()) +
                                " compact ciphertexts, got " + std::to_string(slots.size()));
  const std::size_t s1 = s.block().s1, unit = s.unit(), per = s.per_compact();
  matrix::Matrix w(s.classes, s.cols());
  for (std::size_t j = 0; j < s.w_blocks(); ++j)
    for (std::size_t r = 0; r < s.classes; ++r)
      for (std::size_t t = 0; t < s1 && j * s1 + t < s.cols(); ++t)
        w(r, j * s1 + t) = bound * slots.at(j / per).at((j % per) * unit + r * s1 + t);
  return w;
}

TimeBreakdown& TimeBreakdown::operator+=(const TimeBreakdown& o) {
  matmul += o.matmul;
  softmax += o.softmax;
  bootstrap += o.bootstrap;
  other += o.other;
  steps += o.steps;
  softmax_bootstraps += o.softmax_bootstraps;
  model_bootstraps += o.model_bootstraps;
  return *this;
}

// ------------------------------------------------------------------------------ trainer

EncryptedTrainer::EncryptedTrainer(const ckks::Context& ctx, const ckks::Encoder& enc,
                                   const ckks::Evaluator& ev, const rlwe::RelinKey& rlk,
                                   const rlwe::GaloisKeys& gk, const circuits::Bootstrapper& boot,
                                   const circuits::BootstrapKeys& boot_keys, Shape shape,
                                   EncryptedTrainParams params)
    : ctx_(ctx),
      enc_(enc),
      ev_(ev),
      rlk_(rlk),
      gk_(gk),
      boot_(boot),
      boot_keys_(boot_keys),
      shape_(shape),
      p_(params),
      ex_(ctx, enc, ev, rlk, gk),
      softmax_(ctx, enc, ev, rlk, shape.classes, shape.block(), params.softmax),
      nsq_(ctx, enc, ev, rlk, shape.classes, shape.block(), params.nsq) {
  shape_.validate();
  if (shape_.slots != ctx.max_slots())
    throw std::invalid_argument("trainer: the shape's slots differ from the context's");
  if (!(p_.learning_rate > 0) || !(p_.weight_bound > 0))
    throw std::invalid_argument("trainer: learning rate and weight bound must be positive");
  softmax_.set_bootstrapper(&boot_, &boot_keys_);
  // P - Y, DiagATB (3 levels), the pack mask and the momentum (1 each) follow the softmax.
  softmax_.set_min_output_level(5);
  nsq_.set_bootstrapper(&boot_, &boot_keys_);
  nsq_.set_min_output_level(5);
}

std::vector<long long> EncryptedTrainer::rotations(const Shape& s) {
  s.validate();
  const matrix::BlockShape b = s.block();
  std::set<long long> steps;
  // DiagABT (both outputs) and DiagATB (fold) as dry runs: exactly the steps they rotate by.
  {
    matrix::Executor dry;
    const std::size_t top = 9;
    const auto x = matrix::EncMatrix::shadow(features_layout(s, s.batch), top);
    const auto w =
        matrix::EncMatrix::shadow(matrix::Layout::tiled_rows(s.classes, s.cols(), b), top);
    const auto d = matrix::EncMatrix::shadow(labels_layout(s, s.batch), top);
    matrix::diag_abt(dry, x, w, matrix::AbtOutput::tiled);
    matrix::diag_abt(dry, x, w, matrix::AbtOutput::compact);
    matrix::diag_atb(dry, d, x, matrix::AtbVariant::fold);
    steps.insert(dry.rotation_steps().begin(), dry.rotation_steps().end());
  }
  for (long long k : softmax::EncryptedSoftmax::rotations_for(s.classes, b)) steps.insert(k);
  // Pack / unpack (see pack() and unpack()).
  const auto unit = static_cast<long long>(s.unit());
  for (std::size_t k = 0; k < s.compact_count(); ++k) {
    const std::size_t m = std::min(s.per_compact(), s.w_blocks() - k * s.per_compact());
    const std::size_t g = giant(m);
    for (std::size_t bb = 1; bb < g && bb < m; ++bb) {
      steps.insert(static_cast<long long>(bb) * unit);
      steps.insert(-static_cast<long long>(bb) * unit);
    }
    for (std::size_t a = 1; a * g < m; ++a) {
      steps.insert(static_cast<long long>(a * g) * unit);
      steps.insert(-static_cast<long long>(a * g) * unit);
    }
  }
  for (std::size_t c = 1; c < b.s0 / s.c_pad(); c <<= 1)
    steps.insert(-static_cast<long long>(c) * unit);  // replicate the c_pad rows down the block
  steps.erase(0);
  return {steps.begin(), steps.end()};
}

void EncryptedTrainer::init(ckks::Encryptor& public_encryptor) {
  TrainerState s;
  const std::size_t level = boot_.output_level();
  for (std::size_t k = 0; k < shape_.compact_count(); ++k) {
    s.model.push_back(public_encryptor.encrypt_zero(level, ctx_.default_scale(), shape_.slots));
    s.look.push_back(public_encryptor.encrypt_zero(level, ctx_.default_scale(), shape_.slots));
  }
  state_ = std::move(s);
}

void EncryptedTrainer::set_state(TrainerState s) {
  if (s.model.size() != shape_.compact_count() || s.look.size() != shape_.compact_count())
    throw std::invalid_argument("trainer: the state has " + std::to_string(s.model.size()) +
                                " model ciphertexts, the shape needs " +
                                std::to_string(shape_.compact_count()));
  for (const auto* v : {&s.model, &s.look})
    for (const auto& c : *v)
      if (c.slots != shape_.slots || c.level() < 2)
        throw std::invalid_argument("trainer: a state ciphertext has the wrong slots or level");
  state_ = std::move(s);
}

const ckks::Plaintext& EncryptedTrainer::block_mask(std::size_t j, std::size_t level,
                                                    double factor) {
  for (const auto& [key, pt] : masks_)
    if (key == std::tuple{j, level, factor}) return pt;
  // Encoded at q_level so that the rescale after the product restores the scale.
  const std::size_t s1 = shape_.block().s1;
  std::vector<double> v(shape_.slots, 0.0);
  for (std::size_t r = 0; r < shape_.classes; ++r)
    for (std::size_t t = 0; t < s1 && j * s1 + t < shape_.cols(); ++t) v[r * s1 + t] = factor;
  const double q = static_cast<double>(ctx_.params().q_primes[level]);
  masks_.emplace_back(std::tuple{j, level, factor}, enc_.encode(v, level, q));
  // Callers encode a whole set before a parallel loop reads it; the oldest set goes first.
  if (masks_.size() > 4 * shape_.w_blocks() + 8) masks_.erase(masks_.begin());
  return masks_.back().second;
}

matrix::EncMatrix EncryptedTrainer::unpack(const std::vector<ckks::Ciphertext>& compact) {
  const matrix::BlockShape b = shape_.block();
  const std::size_t nb = shape_.w_blocks(), per = shape_.per_compact();
  const auto unit = static_cast<long long>(shape_.unit());
  matrix::EncMatrix w;
  w.layout = matrix::Layout::tiled_rows(shape_.classes, shape_.cols(), b);
  w.blocks.resize(nb);
  // Bring block j's unit to slot 0: giant rotations by a*g*unit, then hoisted baby steps.
  std::vector<ckks::Ciphertext> at_zero(nb);
  struct Giant {
    std::size_t k, a, g, m;
  };
  std::vector<Giant> giants;
  for (std::size_t k = 0; k < compact.size(); ++k) {
    const std::size_t m = std::min(per, nb - k * per), g = giant(m);
    for (std::size_t a = 0; a * g < m; ++a) giants.push_back({k, a, g, m});
  }
  ex_.parallel_for(giants.size(), [&](std::size_t i) {
    const Giant& gi = giants[i];
    const ckks::Ciphertext base =
        gi.a == 0 ? compact[gi.k]
                  : ev_.rotate(compact[gi.k], static_cast<long long>(gi.a * gi.g) * unit, gk_);
    std::vector<long long> steps;
    for (std::size_t bb = 1; bb < gi.g && gi.a * gi.g + bb < gi.m; ++bb)
      steps.push_back(static_cast<long long>(bb) * unit);
    std::vector<ckks::Ciphertext> rots;
    if (!steps.empty()) rots = ev_.rotate_hoisted(base, steps, gk_);
    const std::size_t j0 = gi.k * per + gi.a * gi.g;
    at_zero[j0] = base;
    for (std::size_t s = 0; s < rots.size(); ++s) at_zero[j0 + 1 + s] = std::move(rots[s]);
  });
  const std::size_t level = at_zero.front().level();
  for (std::size_t j = 0; j < nb; ++j) block_mask(j, level, p_.weight_bound);
  const std::size_t copies = b.s0 / shape_.c_pad();
  ex_.parallel_for(nb, [&](std::size_t j) {
    ckks::Ciphertext c = ev_.multiply_plain(at_zero[j], block_mask(j, level, p_.weight_bound));
    const double scale = at_zero[j].scale;
    ev_.rescale_inplace(c);
    c.scale = scale;
    if (copies > 1) ev_.rotate_sum_inplace(c, copies, -unit, gk_);
    w.blocks[j] = matrix::Ct{std::move(c), 0};
    w.blocks[j].level = w.blocks[j].c.level();
  });
  return w;
}

std::vector<ckks::Ciphertext> EncryptedTrainer::pack(const matrix::EncMatrix& g, double factor) {
  const std::size_t nb = shape_.w_blocks(), per = shape_.per_compact();
  if (g.blocks.size() != nb) throw std::logic_error("pack: gradient has the wrong block count");
  const auto unit = static_cast<long long>(shape_.unit());
  const std::size_t level = g.level();
  for (std::size_t j = 0; j < nb; ++j) block_mask(j, level, factor);
  // Masked first copies, not yet rescaled: rotations do not care, one rescale per output.
  std::vector<ckks::Ciphertext> masked(nb);
  ex_.parallel_for(nb, [&](std::size_t j) {
    ckks::Ciphertext c = ev_.drop_to_level(g.blocks[j].c, level);
    masked[j] = ev_.multiply_plain(c, block_mask(j, level, factor));
  });
  struct Group {
    std::size_t k, a, g, m;
  };
  std::vector<Group> groups;
  for (std::size_t k = 0; k * per < nb; ++k) {
    const std::size_t m = std::min(per, nb - k * per), gs = giant(m);
    for (std::size_t a = 0; a * gs < m; ++a) groups.push_back({k, a, gs, m});
  }
  std::vector<ckks::Ciphertext> sums(groups.size());
  ex_.parallel_for(groups.size(), [&](std::size_t i) {
    const Group& gr = groups[i];
    const std::size_t j0 = gr.k * per + gr.a * gr.g;
    ckks::Ciphertext acc = masked[j0];
    for (std::size_t bb = 1; bb < gr.g && gr.a * gr.g + bb < gr.m; ++bb)
      ev_.add_inplace(acc, ev_.rotate(masked[j0 + bb], -static_cast<long long>(bb) * unit, gk_));
    if (gr.a > 0) ev_.rotate_inplace(acc, -static_cast<long long>(gr.a * gr.g) * unit, gk_);
    sums[i] = std::move(acc);
  });
  std::vector<ckks::Ciphertext> out(shape_.compact_count());
  for (std::size_t i = 0; i < groups.size(); ++i) {
    auto& o = out[groups[i].k];
    if (o.parts.empty())
      o = std::move(sums[i]);
    else
      ev_.add_inplace(o, sums[i]);
  }
  const double scale = g.blocks.front().c.scale;
  for (auto& o : out) {
    ev_.rescale_inplace(o);
    o.scale = scale;
  }
  return out;
}

void EncryptedTrainer::step(const EncryptedBatch& batch) {
  if (state_.model.empty()) throw std::logic_error("trainer: init() or set_state() first");
  if (batch.rows == 0 || batch.rows > shape_.batch)
    throw std::invalid_argument("trainer: batch of " + std::to_string(batch.rows) + " rows");
  if (!(batch.x.layout == features_layout(shape_, batch.rows)) ||
      !(batch.y.layout == labels_layout(shape_, batch.rows)))
    throw std::invalid_argument("trainer: the batch's layouts do not match the shape");
  TimeBreakdown t;
  auto t0 = Clock::now();
  const matrix::EncMatrix look = unpack(state_.look);
  t.other += since(t0);

  t0 = Clock::now();
  const matrix::EncMatrix z = matrix::diag_abt(ex_, batch.x, look, matrix::AbtOutput::tiled);
  t.matmul += since(t0);
  if (probe_.matrix) probe_.matrix("logits", z);

  t0 = Clock::now();
  matrix::EncMatrix d;
  d.layout = z.layout;
  for (std::size_t i = 0; i < z.blocks.size(); ++i) {
    softmax::SoftmaxStats st;
    ckks::Ciphertext p = p_.pipeline == softmax::Pipeline::nsq
                             ? nsq_.apply(z.blocks[i].c, gk_, &st)
                             : softmax_.apply(z.blocks[i].c, gk_, &st);
    t.softmax_bootstraps += st.bootstraps;
    ckks::Ciphertext y = batch.y.blocks[i].c;
    ev_.align_levels_inplace(p, y);
    y.scale = p.scale;  // both the default scale (the softmax output lands exactly on it)
    ev_.sub_inplace(p, y);
    d.blocks.push_back(matrix::Ct{std::move(p), 0});
    d.blocks.back().level = d.blocks.back().c.level();
  }
  t.softmax += since(t0);
  if (probe_.matrix) probe_.matrix("p_minus_y", d);

  t0 = Clock::now();
  const matrix::EncMatrix g = matrix::diag_atb(ex_, d, batch.x, matrix::AtbVariant::fold);
  if (probe_.matrix) probe_.matrix("gradient", g);
  t.matmul += since(t0);

  t0 = Clock::now();
  const double factor = p_.learning_rate / (static_cast<double>(batch.rows) * p_.weight_bound);
  std::vector<ckks::Ciphertext> gc = pack(g, factor);
  const std::size_t k = state_.steps + 1;
  std::vector<ckks::Ciphertext> x_new(gc.size()), look_new(gc.size());
  for (std::size_t i = 0; i < gc.size(); ++i) {
    ckks::Ciphertext l = state_.look[i];
    ev_.align_levels_inplace(l, gc[i]);
    gc[i].scale = l.scale;
    x_new[i] = ev_.sub(l, gc[i]);
    if (p_.optimizer == Optimizer::nesterov) {
      // y_{k+1} = x_{k+1} + mu (x_{k+1} - x_k), mu = (k - 1) / (k + 2) (plain_trainer.h).
      const double mu = static_cast<double>(k - 1) / static_cast<double>(k + 2);
      ckks::Ciphertext x_old = state_.model[i];
      ckks::Ciphertext xn = x_new[i];
      ev_.align_levels_inplace(xn, x_old);
      x_old.scale = xn.scale;
      ckks::Ciphertext diff = ev_.sub(xn, x_old);
      ev_.multiply_const_inplace(diff, mu);
      ev_.rescale_inplace(diff);
      diff.scale = xn.scale;
      ev_.align_levels_inplace(xn, diff);
      look_new[i] = ev_.add(xn, diff);
      ev_.drop_to_level_inplace(x_new[i], look_new[i].level());
    }
  }
  t.other += since(t0);
  if (probe_.compact) {
    std::vector<ckks::Ciphertext> both = x_new;
    if (p_.optimizer == Optimizer::nesterov)
      both.insert(both.end(), look_new.begin(), look_new.end());
    probe_.compact("update", both);
  }

  t0 = Clock::now();
  for (std::size_t i = 0; i < gc.size(); ++i) {
    if (p_.optimizer == Optimizer::nesterov) {
      auto [a, bb] = boot_.bootstrap_real_pair(x_new[i], look_new[i], boot_keys_);
      state_.model[i] = std::move(a);
      state_.look[i] = std::move(bb);
    } else {
      state_.model[i] = boot_.bootstrap(x_new[i], boot_keys_);
      state_.look[i] = state_.model[i];
    }
    ++t.model_bootstraps;
  }
  t.bootstrap += since(t0);
  ++state_.steps;
  t.steps = 1;
  times_ += t;
}

matrix::EncMatrix EncryptedTrainer::logits(const matrix::EncMatrix& x,
                                           const std::vector<ckks::Ciphertext>* model) {
  const auto& m = model ? *model : state_.model;
  if (m.size() != shape_.compact_count())
    throw std::invalid_argument("logits: the model has " + std::to_string(m.size()) +
                                " compact ciphertexts, the shape needs " +
                                std::to_string(shape_.compact_count()));
  if (x.layout.packing != matrix::Packing::blocks || x.layout.cols != shape_.cols() ||
      !(x.layout.block == shape_.block()))
    throw std::invalid_argument("logits: the features' layout does not match the shape");
  const matrix::EncMatrix w = unpack(m);
  return matrix::diag_abt(ex_, x, w, matrix::AbtOutput::compact);
}

}  // namespace hetal::train
