#include "hetal/features/transfer_sets.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>

#include "hetal/data/files.h"
#include "hetal/data/text_datasets.h"

namespace hetal::features {

namespace {

[[noreturn]] void bad(const std::string& what) { throw std::invalid_argument(what); }

constexpr std::size_t kSpamColumns = 57;

// data/tabular/spambase.csv: a header, then 57 numbers and the class (0 nonspam, 1 spam) a row.
struct Spambase {
  std::vector<std::vector<float>> rows;
  std::vector<std::int64_t> labels;
};

Spambase read_spambase(const std::string& data_root) {
  const auto path = data::find_data("tabular/spambase.csv", data_root);
  if (path.empty()) bad("spam: data/tabular/spambase.csv is not installed (run scripts/setup.sh)");
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) bad(path.string() + ": empty");
  Spambase s;
  std::size_t no = 1;
  while (std::getline(in, line)) {
    ++no;
    std::stringstream ss(line);
    std::string field;
    std::vector<float> row;
    while (std::getline(ss, field, ',')) {
      char* end = nullptr;
      const double v = std::strtod(field.c_str(), &end);
      if (field.empty() || *end || !std::isfinite(v))
        bad(path.string() + ":" + std::to_string(no) + ": not a number: " + field);
      row.push_back(static_cast<float>(v));
    }
    if (row.size() != kSpamColumns + 1)
      bad(path.string() + ":" + std::to_string(no) + ": " + std::to_string(row.size()) +
          " fields, expected 58");
    const float label = row.back();
    if (label != 0 && label != 1) bad(path.string() + ":" + std::to_string(no) + ": class not 0/1");
    row.pop_back();
    s.rows.push_back(std::move(row));
    s.labels.push_back(static_cast<std::int64_t>(label));
  }
  if (s.rows.empty()) bad(path.string() + ": no rows");
  return s;
}

FeatureSet spam_half(const std::string& name, const std::string& split, const std::string& root) {
  const Spambase s = read_spambase(root);
  std::vector<std::size_t> order(s.rows.size());
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 g(20240515);  // a fixed split, the same on every machine
  for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[g() % i]);
  const std::size_t half = order.size() / 2;
  const bool a = name == "spam-a";
  const std::vector<std::size_t> mine(a ? order.begin() : order.begin() + half,
                                      a ? order.begin() + half : order.end());
  const std::size_t n_train = mine.size() * 3 / 4;
  const std::vector<std::size_t> train(mine.begin(), mine.begin() + n_train),
      test(mine.begin() + n_train, mine.end());
  std::vector<float> lo(kSpamColumns, INFINITY), hi(kSpamColumns, -INFINITY);
  for (auto r : train)
    for (std::size_t c = 0; c < kSpamColumns; ++c) {
      const float v = std::log1p(std::max(0.f, s.rows[r][c]));
      lo[c] = std::min(lo[c], v);
      hi[c] = std::max(hi[c], v);
    }
  FeatureSet f;
  const auto& rows = split == "train" ? train : test;
  f.rows = rows.size();
  f.cols = kSpamColumns;
  f.class_names = {"nonspam", "spam"};
  f.description = "UCI Spambase (R kernlab), half " + std::string(a ? "a" : "b") + ", " + split +
                  ": log1p, min-max on the training rows";
  for (auto r : rows) {
    for (std::size_t c = 0; c < kSpamColumns; ++c) {
      const float v = std::log1p(std::max(0.f, s.rows[r][c]));
      const float w = hi[c] > lo[c] ? (v - lo[c]) / (hi[c] - lo[c]) : 0.f;
      f.x.push_back(std::clamp(w, 0.f, 1.f));
    }
    f.y.push_back(s.labels[r]);
  }
  return f;
}

}  // namespace

std::vector<std::string> transfer_sets() {
  return {"fine-foods", "reuters-corn", "reuters-grain", "austen", "spam-a", "spam-b"};
}

FeatureSet load_transfer_set(const std::string& name, const std::string& split,
                             const GloveEncoder* glove, const std::string& data_root) {
  if (split != "train" && split != "test")
    bad("transfer set " + name + ": split must be train or test, not " + split);
  if (name == "spam-a" || name == "spam-b") return spam_half(name, split, data_root);
  const auto names = transfer_sets();
  if (std::find(names.begin(), names.end(), name) == names.end()) {
    std::string known;
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
    bad("unknown transfer set '" + name + "' (known: " + known + ")");
  }
  if (!glove) bad("transfer set " + name + ": needs the GloVe encoder");
  const data::TextDataset t = data::load_builtin_text(name, split, data_root);
  FeatureSet f;
  f.rows = t.texts.size();
  f.cols = glove->dimension();
  f.x = glove->encode_batch(t.texts);
  for (auto l : t.labels) f.y.push_back(static_cast<std::int64_t>(l));
  f.class_names = t.class_names;
  f.description = name + " " + split + ": GloVe 6B 100-d, mean of word vectors, L2-normalised";
  return f;
}

}  // namespace hetal::features
