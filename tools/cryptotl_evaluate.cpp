#include "cryptotl_evaluate.h"

#include <omp.h>
#include <stdlib.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>

#include "cli_util.h"
#include "hetal/cryptotl/encrypted_network.h"
#include "hetal/data/npy.h"
#include "hetal/features/transfer_sets.h"
#include "hetal/nn/metrics.h"
#include "hetal/protocol/cryptotl/transfer.h"

namespace hetal::cli {

namespace fs = std::filesystem;
namespace tl = protocol::cryptotl;

namespace {

const std::vector<std::string> kDefaultPairs = {
    "reuters-grain:reuters-corn", "reuters-corn:reuters-grain", "fine-foods:reuters-grain",
    "reuters-grain:fine-foods",   "fine-foods:austen",          "spam-a:spam-b"};

struct Split {
  tl::Rows rows;
  std::size_t classes = 0;
};

Split load(const std::string& name, const std::string& split, const features::GloveEncoder* g,
           std::size_t limit) {
  const auto f = features::load_transfer_set(name, split, g);
  Split s;
  s.rows.rows = limit ? std::min(limit, f.rows) : f.rows;
  s.rows.cols = f.cols;
  s.rows.x.assign(f.x.begin(), f.x.begin() + s.rows.rows * f.cols);
  s.rows.y.assign(f.y.begin(), f.y.begin() + s.rows.rows);
  s.rows.class_names = f.class_names;
  s.classes = f.class_names.size();
  return s;
}

nn::Table table(const tl::Rows& r, std::size_t classes) {
  nn::Table t;
  t.rows = r.rows;
  t.cols = r.cols;
  t.classes = classes;
  t.x = r.x;
  t.y = r.y;
  return t;
}

tl::Rows plain_outputs(const nn::LowerNetwork& net, const tl::Rows& in) {
  const std::vector<double> xd(in.x.begin(), in.x.end());
  const auto y = nn::forward(nn::fuse(net), xd, in.rows);
  tl::Rows out = in;
  out.cols = net.out_dim();
  out.x.assign(y.begin(), y.end());
  return out;
}

// Mean and (sample) standard deviation of each metric over the seeds.
struct Row {
  std::string pair, method;
  nn::Metrics mean, sd;
};

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

}  // namespace

void add_evaluate_options(CLI::App* c, EvaluateOptions& o) {
  c->add_option("--pairs", o.pairs,
                "source:target pairs, comma-separated (default: the table in docs/benchmarks.md)")
      ->delimiter(',');
  c->add_option("--dp-epsilon", o.dp_epsilons,
                "also report upper layers on DP-noised outputs (comma-separated)")
      ->delimiter(',');
  c->add_option("--dp-delta", o.dp_delta, "delta of the DP runs")->capture_default_str();
  c->add_option("--out", o.out, "write the table (markdown) here too");
  c->add_option("--work", o.work, "folder for the keys and bundles (default: a temporary one)");
  c->add_option("--limit", o.limit, "at most this many rows per split (0: all)")
      ->capture_default_str();
  c->add_option("--seed", o.train.seed, "seed of the lower network; the upper layers' first")
      ->capture_default_str();
  c->add_option("--seeds", o.seeds,
                "upper layers trained with this many seeds per method (mean, sd)")
      ->capture_default_str();
  c->add_option("--epochs", o.train.max_epochs, "at most this many epochs per training run")
      ->capture_default_str();
}

int run_evaluate(const EvaluateOptions& o) {
  const auto pairs = o.pairs.empty() ? kDefaultPairs : o.pairs;
  fs::path work = o.work;
  if (work.empty()) {  // a fresh private folder (it holds secret keys)
    std::string tmpl = (fs::temp_directory_path() / "hetal-cryptotl-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("cannot create a temporary folder");
    work = tmpl;
  }
  fs::create_directories(work);
  std::unique_ptr<features::GloveEncoder> glove;
  std::vector<Row> rows;
  std::string timing =
      "| pair | samples | per ciphertext | client keys (s) | encrypt (s) | server total (s) | "
      "evaluation (s) | samples/s | decrypt (s) | max abs error "
      "|\n|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& pair : pairs) {
    const auto colon = pair.find(':');
    if (colon == std::string::npos)
      throw CLI::ValidationError("--pairs", "'" + pair + "' is not source:target");
    const std::string src = pair.substr(0, colon), tgt = pair.substr(colon + 1);
    for (const auto& n : {src, tgt})
      if (n.rfind("spam", 0) != 0 && !glove) glove = std::make_unique<features::GloveEncoder>();
    std::printf("== %s -> %s\n", src.c_str(), tgt.c_str());
    const Split s_train = load(src, "train", glove.get(), o.limit);
    const Split t_train = load(tgt, "train", glove.get(), o.limit),
                t_test = load(tgt, "test", glove.get(), o.limit);
    if (s_train.rows.cols != t_train.rows.cols)
      throw std::invalid_argument(pair + ": source dimension " + std::to_string(s_train.rows.cols) +
                                  " differs from the target's " +
                                  std::to_string(t_train.rows.cols));
    // server: the lower network on the source
    nn::TrainLog lg;
    auto net = nn::train_lower_network(table(s_train.rows, s_train.classes), o.train, &lg);
    net.source = src;
    const fs::path model = work / (src + ".tln");
    nn::save_lower_network(net, model.string());
    std::printf("  lower network on %s: %zu epochs, %.1f s\n", src.c_str(), lg.epochs, lg.seconds);
    // The upper layers trained with `seeds` seeds: a 1e-7 change in the inputs changes the
    // optimiser's path, so one seed's accuracy moves by a point or more (604 test rows: 1 pt is
    // 6 articles); the means compare methods, not the luck of one initialisation.
    auto add = [&](const std::string& method, const tl::Rows& tr, const tl::Rows& te) {
      std::vector<nn::Metrics> ms;
      for (std::size_t k = 0; k < o.seeds; ++k) {
        nn::TrainOptions to = o.train;
        to.seed = o.train.seed + k;
        const auto up = nn::UpperModel::train(table(tr, t_train.classes), to);
        ms.push_back(nn::classification_metrics(te.y, up.predict(te.x, te.rows), t_train.classes));
      }
      Row r{src + " → " + tgt, method, {}, {}};
      const double n = static_cast<double>(ms.size());
      for (const auto& m : ms) {
        r.mean.accuracy += m.accuracy / n;
        r.mean.f1 += m.f1 / n;
        r.mean.kappa += m.kappa / n;
      }
      for (const auto& m : ms)
        if (ms.size() > 1) {
          r.sd.accuracy += std::pow(m.accuracy - r.mean.accuracy, 2) / (n - 1);
          r.sd.f1 += std::pow(m.f1 - r.mean.f1, 2) / (n - 1);
          r.sd.kappa += std::pow(m.kappa - r.mean.kappa, 2) / (n - 1);
        }
      r.sd = {std::sqrt(r.sd.accuracy), std::sqrt(r.sd.f1), std::sqrt(r.sd.kappa)};
      std::printf("  %-28s accuracy %6.2f ± %.2f %%  F1 %.4f  kappa %.4f\n", method.c_str(),
                  100 * r.mean.accuracy, 100 * r.sd.accuracy, r.mean.f1, r.mean.kappa);
      rows.push_back(r);
      return r.mean.accuracy;
    };
    add("raw inputs (no transfer)", t_train.rows, t_test.rows);
    const auto p_train = plain_outputs(net, t_train.rows), p_test = plain_outputs(net, t_test.rows);
    const double plain_acc = add("plain lower network", p_train, p_test);
    // client and server through their files, with real keys
    const fs::path client = work / ("client-" + std::to_string(t_train.rows.cols)),
                   bundle = work / ("bundle-" + src + "-" + tgt);
    fs::remove_all(bundle);
    auto t0 = Clock::now();
    tl::client_setup(client, t_train.rows.cols, hetal::cryptotl::default_parameters());
    const double keys_s = since(t0);
    t0 = Clock::now();
    tl::client_encrypt(client, bundle, "train", t_train.rows);
    tl::client_encrypt(client, bundle, "test", t_test.rows);
    const double enc_s = since(t0);
    t0 = Clock::now();
    const auto res = tl::server_forward(model, bundle, {});
    const double fwd_s = since(t0);
    t0 = Clock::now();
    const auto e_train = tl::client_decrypt(client, bundle, "train"),
               e_test = tl::client_decrypt(client, bundle, "test");
    const double dec_s = since(t0);
    double err = 0;
    for (std::size_t i = 0; i < e_train.x.size(); ++i)
      err = std::max(err, std::abs(double(e_train.x[i]) - double(p_train.x[i])));
    const double enc_acc = add("encrypted lower network", e_train, e_test);
    std::printf("  encrypted - plain: %+.2f pt (target: within 0.5)\n",
                100 * (enc_acc - plain_acc));
    const std::size_t samples = t_train.rows.rows + t_test.rows.rows;
    timing += "| " + src + " → " + tgt + " | " + std::to_string(samples) + " | " +
              std::to_string(res.samples_per_ciphertext()) + " | " + fmt("%.1f", keys_s) + " | " +
              fmt("%.1f", enc_s) + " | " + fmt("%.1f", fwd_s) + " | " + fmt("%.1f", res.seconds()) +
              " | " + fmt("%.0f", samples / res.seconds()) + " | " + fmt("%.1f", dec_s) + " | " +
              fmt("%.1e", err) + " |\n";
    std::printf(
        "  forward: %.1f s on the server (evaluation %.1f s) for %zu samples (%.0f samples/s), "
        "max |encrypted - plain| %.1e\n",
        fwd_s, res.seconds(), samples, samples / res.seconds(), err);
    for (double eps : o.dp_epsilons) {
      tl::ForwardOptions f;
      const bool spam = src.rfind("spam", 0) == 0;  // spam: [0, 1]^57; text: the unit L2 ball
      f.dp = tl::DpOptions{eps, o.dp_delta, spam ? 0.0 : -1.0, 1.0, spam ? 0.0 : 1.0};
      const auto r = tl::server_forward(model, bundle, f);
      add("encrypted + DP ε = " + fmt("%g", eps) + " (σ " + fmt("%.3g", r.dp().sigma()) + ")",
          tl::client_decrypt(client, bundle, "train"), tl::client_decrypt(client, bundle, "test"));
    }
    fs::remove_all(bundle);
  }
  std::string table = "| pair (source → target) | method | accuracy (%, mean ± sd over " +
                      std::to_string(o.seeds) +
                      " seeds) | F1 | Cohen's κ |\n|---|---|---|---|---|\n";
  for (const auto& r : rows)
    table += "| " + r.pair + " | " + r.method + " | " + fmt("%.2f", 100 * r.mean.accuracy) + " ± " +
             fmt("%.2f", 100 * r.sd.accuracy) + " | " + fmt("%.4f", r.mean.f1) + " ± " +
             fmt("%.4f", r.sd.f1) + " | " + fmt("%.4f", r.mean.kappa) + " ± " +
             fmt("%.4f", r.sd.kappa) + " |\n";
  const std::string all = table + "\n" + timing;
  std::printf("\n%s", all.c_str());
  if (!o.out.empty()) data::write_file_atomic(o.out, all);
  if (o.work.empty()) fs::remove_all(work);
  return 0;
}

}  // namespace hetal::cli
