#include "hetal/nn/torch_models.h"

#include <omp.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <random>
#include <stdexcept>

#include "hetal/data/npy.h"

namespace hetal::nn {

namespace {

[[noreturn]] void bad(const std::string& what) { throw std::invalid_argument(what); }

// CryptoTL's lower network (lower_network.h), trained with its polynomial activation in place.
struct LowerImpl : torch::nn::Module {
  torch::nn::Conv1d conv{nullptr};
  torch::nn::Linear dense1{nullptr}, dense2{nullptr};
  explicit LowerImpl(std::int64_t d) {
    conv = register_module(
        "conv",
        torch::nn::Conv1d(torch::nn::Conv1dOptions(1, 1, kConvKernel).padding(kConvKernel / 2)));
    dense1 = register_module("dense1", torch::nn::Linear(d, d));
    dense2 = register_module("dense2", torch::nn::Linear(d - 2, d - 2));
  }
  torch::Tensor forward(torch::Tensor x) {
    auto h = dense1(conv(x.unsqueeze(1)).squeeze(1));
    const auto& c = kApproxRelu;
    h = c[0] + h * (c[1] + h * (c[2] + h * c[3]));
    h = torch::avg_pool1d(h.unsqueeze(1), {3}, {1}).squeeze(1);
    return dense2(h);
  }
};
TORCH_MODULE(Lower);

// The upper layers (CryptoTL's client network): Dense + ReLU, MaxPool(3), Dropout, Dense.
struct UpperImpl : torch::nn::Module {
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  double dropout;
  UpperImpl(std::int64_t m, std::int64_t outputs, double p) : dropout(p) {
    if (m < 3) bad("upper layers: input dimension " + std::to_string(m) + " below 3");
    fc1 = register_module("fc1", torch::nn::Linear(m, m));
    fc2 = register_module("fc2", torch::nn::Linear(m / 3, outputs));
  }
  torch::Tensor forward(torch::Tensor x) {
    auto h = torch::relu(fc1(x));
    h = torch::max_pool1d(h.unsqueeze(1), {3}).squeeze(1);
    h = torch::dropout(h, dropout, is_training());
    return fc2(h);
  }
};
TORCH_MODULE(Upper);

// Source head on the lower network, dropped after pre-training.
struct StackImpl : torch::nn::Module {
  Lower lower{nullptr};
  Upper upper{nullptr};
  StackImpl(std::int64_t d, std::int64_t outputs, double p) {
    lower = register_module("lower", Lower(d));
    upper = register_module("upper", Upper(d - 2, outputs, p));
  }
  torch::Tensor forward(torch::Tensor x) { return upper(lower(x)); }
};
TORCH_MODULE(Stack);

// Cross-entropy with class weights n / (classes * n_c) (empty: unweighted), so that a rare class
// (45 of 1554 Reuters articles are about corn) is not simply never predicted.
torch::Tensor loss_of(const torch::Tensor& logits, const torch::Tensor& y, std::size_t classes,
                      const torch::Tensor& weights) {
  if (classes == 2) {
    const auto target = y.to(torch::kFloat);
    if (!weights.defined())
      return torch::binary_cross_entropy_with_logits(logits.squeeze(1), target);
    return torch::binary_cross_entropy_with_logits(logits.squeeze(1), target,
                                                   weights.index_select(0, y));
  }
  return torch::nn::functional::cross_entropy(
      logits, y, torch::nn::functional::CrossEntropyFuncOptions().weight(weights));
}

torch::Tensor balanced_weights(const torch::Tensor& y, std::size_t classes) {
  const auto counts =
      torch::bincount(y, c10::nullopt, static_cast<std::int64_t>(classes)).to(torch::kDouble);
  const double n = static_cast<double>(y.size(0)), k = static_cast<double>(classes);
  return (n / (counts.clamp_min(1) * k)).to(torch::kFloat);
}

torch::Tensor predict_of(const torch::Tensor& logits, std::size_t classes) {
  if (classes == 2) return (logits.squeeze(1) > 0).to(torch::kLong);
  return logits.argmax(1);
}

std::int64_t outputs_for(std::size_t classes) {
  return classes == 2 ? 1 : static_cast<std::int64_t>(classes);
}

// Adam on mini-batches with early stopping on a held-out part of the rows; the best epoch's
// weights are kept. One intra-op thread: the nets are small, and results repeat bit for bit.
template <class Module>
TrainLog fit(Module& model, const torch::Tensor& x, const torch::Tensor& y, std::size_t classes,
             const TrainOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::size_t n = static_cast<std::size_t>(x.size(0));
  std::mt19937_64 rng(o.seed);
  std::vector<std::int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  std::size_t n_val = static_cast<std::size_t>(std::round(o.validation_fraction * n));
  if (n_val >= n) n_val = n / 2;
  const std::vector<std::int64_t> val_idx(order.begin(), order.begin() + n_val),
      tr_idx(order.begin() + n_val, order.end());
  if (tr_idx.empty()) bad("training: no rows left to train on");
  const auto xv = x.index_select(0, torch::tensor(val_idx)),
             yv = y.index_select(0, torch::tensor(val_idx));
  const auto weights = o.balanced
                           ? balanced_weights(y.index_select(0, torch::tensor(tr_idx)), classes)
                           : torch::Tensor();
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(o.learning_rate));
  TrainLog log;
  log.best_validation_loss = INFINITY;
  std::vector<torch::Tensor> best;
  auto snapshot = [&] {
    best.clear();
    for (const auto& p : model->parameters()) best.push_back(p.detach().clone());
  };
  snapshot();
  std::size_t since_best = 0;
  std::vector<std::int64_t> tr = tr_idx;
  for (std::size_t e = 1; e <= o.max_epochs; ++e) {
    model->train();
    std::shuffle(tr.begin(), tr.end(), rng);
    for (std::size_t s = 0; s < tr.size(); s += o.batch) {
      const std::vector<std::int64_t> b(tr.begin() + s,
                                        tr.begin() + std::min(tr.size(), s + o.batch));
      const auto idx = torch::tensor(b);
      opt.zero_grad();
      auto loss =
          loss_of(model->forward(x.index_select(0, idx)), y.index_select(0, idx), classes, weights);
      loss.backward();
      opt.step();
    }
    log.epochs = e;
    double vloss = 0;
    {
      torch::NoGradGuard ng;
      model->eval();
      const auto& xs = n_val ? xv : x;
      const auto& ys = n_val ? yv : y;
      vloss = loss_of(model->forward(xs), ys, classes, weights).template item<double>();
    }
    if (o.verbose) std::printf("  epoch %zu: validation loss %.5f\n", e, vloss);
    if (!std::isfinite(vloss)) break;  // diverged: keep the best epoch so far
    if (vloss < log.best_validation_loss - 1e-6) {
      log.best_validation_loss = vloss;
      log.best_epoch = e;
      since_best = 0;
      snapshot();
    } else if (++since_best >= o.patience) {
      break;
    }
  }
  {
    torch::NoGradGuard ng;
    auto params = model->parameters();
    for (std::size_t i = 0; i < params.size(); ++i) params[i].copy_(best[i]);
  }
  model->eval();
  log.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return log;
}

torch::Tensor features_of(const Table& t) {
  return torch::from_blob(const_cast<float*>(t.x.data()),
                          {static_cast<std::int64_t>(t.rows), static_cast<std::int64_t>(t.cols)},
                          torch::kFloat)
      .clone();
}

torch::Tensor labels_of(const Table& t) {
  return torch::from_blob(const_cast<std::int64_t*>(t.y.data()),
                          {static_cast<std::int64_t>(t.rows)}, torch::kLong)
      .clone();
}

std::vector<double> to_vector(const torch::Tensor& t) {
  const auto c = t.detach().to(torch::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// One intra-op thread while libtorch runs (deterministic results, and the nets are small).
// libtorch sets the calling thread's OpenMP thread count to its own at every operation, and the
// HE code in the same process shares that count: it is set back to what it was on the way out.
struct ThreadScope {
  int omp_before = omp_get_max_threads();
  ThreadScope() { torch::set_num_threads(1); }
  ~ThreadScope() {
    torch::set_num_threads(omp_before);
    omp_set_num_threads(omp_before);
  }
};

}  // namespace

void Table::check(const char* what) const {
  const std::string w(what);
  if (rows == 0 || cols == 0) bad(w + ": no rows or no columns");
  if (x.size() != rows * cols) bad(w + ": feature count does not match rows x cols");
  if (y.size() != rows)
    bad(w + ": " + std::to_string(y.size()) + " labels for " + std::to_string(rows) + " rows");
  if (classes < 2) bad(w + ": fewer than 2 classes");
  for (auto l : y)
    if (l < 0 || static_cast<std::size_t>(l) >= classes)
      bad(w + ": label " + std::to_string(l) + " outside [0, " + std::to_string(classes) + ")");
  for (float v : x)
    if (!std::isfinite(v)) bad(w + ": a feature is not finite");
}

LowerNetwork train_lower_network(const Table& source, const TrainOptions& o, TrainLog* log) {
  source.check("source data");
  if (source.cols < kConvKernel || source.cols > kMaxDim)
    bad("source data: dimension " + std::to_string(source.cols) + " outside [9, 4096]");
  ThreadScope threads;
  torch::manual_seed(o.seed);
  Stack model(static_cast<std::int64_t>(source.cols), outputs_for(source.classes), o.dropout);
  const TrainLog l = fit(model, features_of(source), labels_of(source), source.classes, o);
  if (log) *log = l;
  LowerNetwork net;
  net.dim = source.cols;
  const auto& low = model->lower;
  net.conv_w = to_vector(low->conv->weight);
  net.conv_b = to_vector(low->conv->bias)[0];
  net.w1 = to_vector(low->dense1->weight);
  net.b1 = to_vector(low->dense1->bias);
  net.w2 = to_vector(low->dense2->weight);
  net.b2 = to_vector(low->dense2->bias);
  net.check();
  return net;
}

struct UpperModel::Impl {
  std::size_t in_dim = 0, classes = 0;
  double dropout = 0.2;
  torch::Tensor mean, stddev;
  Upper net{nullptr};
  torch::Tensor standardise(const torch::Tensor& x) const { return (x - mean) / stddev; }
};

UpperModel::UpperModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
UpperModel::UpperModel(UpperModel&&) noexcept = default;
UpperModel& UpperModel::operator=(UpperModel&&) noexcept = default;
UpperModel::~UpperModel() = default;

std::size_t UpperModel::input_dim() const { return impl_->in_dim; }
std::size_t UpperModel::classes() const { return impl_->classes; }

UpperModel UpperModel::train(const Table& data, const TrainOptions& o, TrainLog* log) {
  data.check("training data");
  ThreadScope threads;
  torch::manual_seed(o.seed);
  auto impl = std::make_unique<Impl>();
  impl->in_dim = data.cols;
  impl->classes = data.classes;
  impl->dropout = o.dropout;
  const auto x = features_of(data);
  impl->mean = x.mean(0);
  impl->stddev = x.std(0).clamp_min(1e-6);
  impl->net = Upper(static_cast<std::int64_t>(data.cols), outputs_for(data.classes), o.dropout);
  const TrainLog l = fit(impl->net, impl->standardise(x), labels_of(data), data.classes, o);
  if (log) *log = l;
  return UpperModel(std::move(impl));
}

std::vector<std::int64_t> UpperModel::predict(const std::vector<float>& x, std::size_t rows) const {
  if (rows == 0 || x.size() != rows * impl_->in_dim)
    bad("upper layers: " + std::to_string(x.size()) + " values for " + std::to_string(rows) +
        " rows of " + std::to_string(impl_->in_dim));
  ThreadScope threads;
  torch::NoGradGuard ng;
  impl_->net->eval();
  const auto t = torch::from_blob(
      const_cast<float*>(x.data()),
      {static_cast<std::int64_t>(rows), static_cast<std::int64_t>(impl_->in_dim)}, torch::kFloat);
  const auto p =
      predict_of(impl_->net->forward(impl_->standardise(t)), impl_->classes).contiguous();
  return std::vector<std::int64_t>(p.data_ptr<std::int64_t>(), p.data_ptr<std::int64_t>() + rows);
}

std::vector<float> UpperModel::parameters() const {
  std::vector<float> out;
  for (const auto& p : impl_->net->parameters()) {
    const auto c = p.detach().contiguous();
    out.insert(out.end(), c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  }
  return out;
}

void UpperModel::save(const std::string& path) const {
  torch::serialize::OutputArchive ar;
  ar.write("hetal.format", torch::tensor(std::int64_t{0x48544c55}));  // "HTLU"
  ar.write("hetal.in_dim", torch::tensor(static_cast<std::int64_t>(impl_->in_dim)));
  ar.write("hetal.classes", torch::tensor(static_cast<std::int64_t>(impl_->classes)));
  ar.write("hetal.dropout", torch::tensor(impl_->dropout));
  ar.write("hetal.mean", impl_->mean);
  ar.write("hetal.std", impl_->stddev);
  impl_->net->save(ar);
  const std::string tmp = path + ".tmp";
  std::filesystem::remove(tmp);
  data::create_owner_only_file(tmp);  // mode 0600 before a byte of the model is written
  try {
    ar.save_to(tmp);
  } catch (...) {
    std::filesystem::remove(tmp);
    throw;
  }
  std::filesystem::rename(tmp, path);
}

UpperModel UpperModel::load(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) bad(path + ": no such upper-layer model file");
  try {
    torch::serialize::InputArchive ar;
    ar.load_from(path);
    torch::Tensor format, in_dim, classes, dropout;
    ar.read("hetal.format", format);
    if (format.item<std::int64_t>() != 0x48544c55) bad(path + ": not an upper-layer model file");
    ar.read("hetal.in_dim", in_dim);
    ar.read("hetal.classes", classes);
    ar.read("hetal.dropout", dropout);
    auto impl = std::make_unique<Impl>();
    const auto d = in_dim.item<std::int64_t>(), c = classes.item<std::int64_t>();
    if (d < 3 || d > static_cast<std::int64_t>(kMaxDim) || c < 2 || c > 1 << 16)
      bad(path + ": upper-layer model has dimension " + std::to_string(d) + " and " +
          std::to_string(c) + " classes");
    impl->in_dim = static_cast<std::size_t>(d);
    impl->classes = static_cast<std::size_t>(c);
    impl->dropout = dropout.item<double>();
    ar.read("hetal.mean", impl->mean);
    ar.read("hetal.std", impl->stddev);
    if (impl->mean.numel() != d || impl->stddev.numel() != d)
      bad(path + ": standardisation vectors do not match the dimension");
    impl->net = Upper(d, outputs_for(impl->classes), impl->dropout);
    impl->net->load(ar);
    return UpperModel(std::move(impl));
  } catch (const c10::Error& e) {
    bad(path + ": not a readable upper-layer model file (" +
        std::string(e.what_without_backtrace()).substr(0, 200) + ")");
  }
}

}  // namespace hetal::nn
