// Text side of the client's features (no HE): the TSV / ARFF text loaders, the built-in text
// sets and the GloVe mean encoder (checked against vectors computed by Node from wink's JSON).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "hetal/data/files.h"
#include "hetal/data/text_datasets.h"
#include "hetal/features/text_encoder.h"

namespace {

namespace fs = std::filesystem;
using hetal::data::TextDataset;
using hetal::features::GloveEncoder;

/// A fresh temporary folder per test, removed afterwards.
class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("hetal_text_" + std::to_string(::getpid()) + "_" +
                                        info->test_suite_name() + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& content) {
    const fs::path p = dir_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
  }

  fs::path dir_;
};

/// Runs f, expects std::invalid_argument whose message names `path` and contains `what`.
template <class F>
void expect_refused(F&& f, const std::string& path, const std::string& what) {
  try {
    f();
    ADD_FAILURE() << "accepted; expected an error naming " << path << " with '" << what << "'";
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << msg;
  }
}

// ---- TSV ----------------------------------------------------------------------------------

using TsvTest = TempDir;

TEST_F(TsvTest, ReadsRowsAndClassesInOrderOfAppearance) {
  const auto p =
      write("a.tsv", "other\tnot good at all\ngreat\tlovely  stuff\r\nother\t\ngreat\tyes");
  const TextDataset d = hetal::data::load_text_tsv(p);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"other", "great"}));
  EXPECT_EQ(d.texts, (std::vector<std::string>{"not good at all", "lovely  stuff", "", "yes"}));
  EXPECT_EQ(d.labels, (std::vector<std::size_t>{0, 1, 0, 1}));
}

TEST_F(TsvTest, GivenClassNamesFixTheOrder) {
  const auto p = write("a.tsv", "other\tx\ngreat\ty\n");
  const TextDataset d = hetal::data::load_text_tsv(p, {"great", "other"});
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"great", "other"}));
  EXPECT_EQ(d.labels, (std::vector<std::size_t>{1, 0}));
  expect_refused(
      [&] {
        hetal::data::load_text_tsv(p, {"great", "bad"});
      },
      p, "line 1: unknown label 'other'");
}

TEST_F(TsvTest, RefusesMalformedFiles) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "empty file"},
      {"great\tok\n\nother\tx\n", "line 2: empty line"},
      {"great\tok\nno tab here\n", "line 2: 1 column, expected 2"},
      {"great\tok\tmore\n", "line 1: 3 columns, expected 2"},
      {"great\tok\n\tno label\n", "line 2: empty label"},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto p = write("bad" + std::to_string(i) + ".tsv", cases[i].first);
    expect_refused([&] { hetal::data::load_text_tsv(p); }, p, cases[i].second);
  }
  const std::string missing = (dir_ / "missing.tsv").string();
  expect_refused([&] { hetal::data::load_text_tsv(missing); }, missing, "cannot open");
}

// ---- ARFF ---------------------------------------------------------------------------------

using ArffTest = TempDir;

const char* kArffHeader =
    "% a comment\n"
    "@relation 'Reuters-21578 Corn ModApte Train'\n"
    "\n"
    "@attribute Text string\n"
    "@attribute class-att {0,1}\n"
    "\n"
    "@data\n";

TEST_F(ArffTest, ReadsQuotedTextWithEscapes) {
  const auto p = write("a.arff", std::string(kArffHeader) +
                                     "'BAHIA COCOA\\nit\\'s \"dry\" \\\\ 100%',0\n"
                                     "% skipped\n"
                                     "\n"
                                     "  \"double, quoted\\ttab\" , 1 \n"
                                     "bare_word,'1'\n");
  const TextDataset d = hetal::data::load_text_arff(p);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"0", "1"}));
  ASSERT_EQ(d.texts.size(), 3u);
  EXPECT_EQ(d.texts[0], "BAHIA COCOA\nit's \"dry\" \\ 100%");
  EXPECT_EQ(d.texts[1], "double, quoted\ttab");
  EXPECT_EQ(d.texts[2], "bare_word");
  EXPECT_EQ(d.labels, (std::vector<std::size_t>{0, 1, 1}));
}

TEST_F(ArffTest, FindsTextAndClassAmongOtherAttributes) {
  const auto p = write("b.arff",
                       "@RELATION r\n@ATTRIBUTE 'the class' {neg, 'pos x'}\n"
                       "@ATTRIBUTE id NUMERIC\n@ATTRIBUTE body STRING\n@DATA\n"
                       "'pos x', 7, 'hello world'\nneg,8,'bye'\n");
  const TextDataset d = hetal::data::load_text_arff(p);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"neg", "pos x"}));
  EXPECT_EQ(d.texts, (std::vector<std::string>{"hello world", "bye"}));
  EXPECT_EQ(d.labels, (std::vector<std::size_t>{1, 0}));
}

TEST_F(ArffTest, RefusesMalformedFiles) {
  const std::string h = kArffHeader;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "empty file"},
      {h + "'ok',0\n'unterminated,1\n", "line 9: unterminated '-quoted value"},
      {h + "'text'x,0\n", "line 8: unexpected text after a quoted value"},
      {h + "'text',0,1\n", "line 8: 3 values, expected 2"},
      {h + "'text'\n", "line 8: 1 values, expected 2"},
      {h + "'text',?\n", "line 8: missing class"},
      {h + "'text',\n", "line 8: missing class"},
      {h + "'text',2\n", "line 8: class '2' is not declared (0,1)"},
      {h + "?,1\n", "line 8: missing text"},
      {h + "{0 'text',1 0}\n", "line 8: sparse rows are not supported"},
      {h, "no data rows after @data"},
      {"@relation r\n@attribute Text string\n@attribute c {0,1}\n'x',0\n", "line 4: expected"},
      {"@relation r\n@attribute Text string\n@attribute c {0,1}\n", "no @data section"},
      {"@attribute a numeric\n@attribute c {0,1}\n@data\n1,0\n", "no string attribute"},
      {"@attribute Text string\n@attribute c numeric\n@data\n'x',0\n", "no nominal attribute"},
      {"@attribute Text strng\n@data\n", "line 1: unknown type 'strng'"},
      {"@attribute c {0,'1}\n@data\n", "line 1: unterminated '-quoted value"},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto p = write("bad" + std::to_string(i) + ".arff", cases[i].first);
    SCOPED_TRACE(cases[i].second);
    expect_refused([&] { hetal::data::load_text_arff(p); }, p, cases[i].second);
  }
}

// ---- built-in sets ------------------------------------------------------------------------

using BuiltinTextTest = TempDir;

TEST_F(BuiltinTextTest, KnowsItsNamesAndRefusesOthers) {
  const auto names = hetal::data::builtin_text_datasets();
  for (const char* n : {"fine-foods", "reuters-corn", "reuters-grain", "austen"})
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  EXPECT_THROW(hetal::data::load_builtin_text("imdb", "train"), std::invalid_argument);
  EXPECT_THROW(hetal::data::load_builtin_text("fine-foods", "validation"), std::invalid_argument);
}

TEST_F(BuiltinTextTest, MissingSetSaysWhereItLookedAndWhatToRun) {
  const std::string root = dir_.string();
  try {
    hetal::data::load_builtin_text("fine-foods", "train", root);
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(root + "/text/fine_foods/train.tsv"), std::string::npos) << msg;
    EXPECT_NE(msg.find(root + "/data/text/fine_foods/train.tsv"), std::string::npos) << msg;
    EXPECT_NE(msg.find("scripts/setup.sh"), std::string::npos) << msg;
  }
}

TEST_F(BuiltinTextTest, LoadsFromADataRootAndDecodesReutersEntities) {
  write("data/text/fine_foods/test.tsv", "other\tmeh\ngreat\tyum\n");
  write("data/text/reuters/ReutersCorn-train.arff",
        std::string(kArffHeader) + "'A &lt;B&gt; &amp; C\\n Reuter\\n&#3;',1\n");
  const TextDataset ff = hetal::data::load_builtin_text("fine-foods", "test", dir_.string());
  EXPECT_EQ(ff.class_names, (std::vector<std::string>{"great", "other"}));  // fixed, not "other"
  EXPECT_EQ(ff.labels, (std::vector<std::size_t>{1, 0}));
  const TextDataset r = hetal::data::load_builtin_text("reuters-corn", "train", dir_.string());
  EXPECT_EQ(r.texts, (std::vector<std::string>{"A <B> & C\n Reuter\n "}));
}

std::size_t count(const std::vector<std::size_t>& v, std::size_t x) {
  return static_cast<std::size_t>(std::count(v.begin(), v.end(), x));
}

/// The installed sets' sizes and class balance (scripts/setup_text.sh); skipped if not installed.
TEST(BuiltinTextInstalled, SizesAndClassBalance) {
  struct Expect {
    const char* name;
    const char* file;  // a file whose presence means the set is installed
    std::size_t train, test;
    std::vector<std::size_t> train_counts, test_counts;
  };
  const std::vector<Expect> sets = {
      {"fine-foods", "text/fine_foods/test.tsv", 4000, 1000, {2600, 1400}, {658, 342}},
      {"reuters-corn", "text/reuters/ReutersCorn-test.arff", 1554, 604, {1509, 45}, {580, 24}},
      {"reuters-grain", "text/reuters/ReutersGrain-test.arff", 1554, 604, {1451, 103}, {547, 57}},
      {"austen", "text/austen/test.tsv", 4800, 1200, std::vector<std::size_t>(6, 800),
       std::vector<std::size_t>(6, 200)},
  };
  std::size_t found = 0;
  for (const Expect& e : sets) {
    if (hetal::data::find_data(e.file).empty()) continue;
    ++found;
    SCOPED_TRACE(e.name);
    for (const auto& [split, n, counts] : {std::tuple{"train", e.train, e.train_counts},
                                           std::tuple{"test", e.test, e.test_counts}}) {
      const TextDataset d = hetal::data::load_builtin_text(e.name, split);
      EXPECT_EQ(d.texts.size(), n) << split;
      ASSERT_EQ(d.labels.size(), d.texts.size());
      ASSERT_EQ(d.class_names.size(), counts.size());
      for (std::size_t c = 0; c < counts.size(); ++c)
        EXPECT_EQ(count(d.labels, c), counts[c]) << split << " class " << d.class_names[c];
      for (const std::string& t : d.texts) ASSERT_EQ(t.find("&#3;"), std::string::npos);
    }
  }
  if (found == 0) GTEST_SKIP() << "no text data set installed; run scripts/setup.sh";
}

// ---- GloVe file format --------------------------------------------------------------------

/// Writes a glove100.bin-format file (layout in text_encoder.h) from words and vectors.
std::string glove_file(const std::vector<std::string>& words, const std::vector<float>& vectors,
                       std::uint32_t dim) {
  std::string blob;
  for (const auto& w : words) blob += static_cast<char>(w.size()) + w;
  blob.resize((blob.size() + 3) / 4 * 4, '\0');
  std::string payload = blob;
  payload.append(reinterpret_cast<const char*>(vectors.data()), vectors.size() * sizeof(float));
  std::uint32_t h = 0x811c9dc5u;
  for (std::size_t i = 0; i < payload.size(); i += 4) {
    std::uint32_t x;
    std::memcpy(&x, payload.data() + i, 4);
    h = (h ^ x) * 0x01000193u;
  }
  const std::uint32_t header[6] = {1,   static_cast<std::uint32_t>(words.size()),
                                   dim, static_cast<std::uint32_t>(blob.size()),
                                   h,   0};
  return std::string("HETALGLV") + std::string(reinterpret_cast<const char*>(header), 24) + payload;
}

/// A 3-d toy vocabulary: word i has the vector (i + 1, -(i + 1), 0.5).
const std::vector<std::string> kToyWords = {"do",     "like",   "well-known", "well",
                                            "e-mail", "coffee", "ca",         "clock"};
std::vector<float> toy_vectors() {
  std::vector<float> v;
  for (std::size_t i = 0; i < kToyWords.size(); ++i)
    v.insert(v.end(), {float(i + 1), -float(i + 1), 0.5f});
  return v;
}

using GloveFileTest = TempDir;

TEST_F(GloveFileTest, ToyVocabularyTokensAndMeans) {
  const auto p = write("toy.bin", glove_file(kToyWords, toy_vectors(), 3));
  const GloveEncoder mean(p, GloveEncoder::Pooling::kMean);
  EXPECT_EQ(mean.dimension(), 3u);
  EXPECT_EQ(mean.vocabulary_size(), kToyWords.size());
  EXPECT_EQ(mean.tokens("I DON'T like well-known, well--known, e-mail-ish it’s o'clock"),
            (std::vector<std::string>{"i", "do", "like", "well-known", "well", "known", "e", "mail",
                                      "ish", "it", "o", "clock"}));
  // do (1), like (2), coffee (6): mean 3; unknown words are skipped, not averaged in as zeros.
  EXPECT_EQ(mean.encode("Don't LIKE zzz coffee!"), (std::vector<float>{3, -3, 0.5f}));
  EXPECT_EQ(mean.encode("nothing known here 123"), (std::vector<float>{0, 0, 0}));
  EXPECT_EQ(mean.encode(""), (std::vector<float>{0, 0, 0}));

  const GloveEncoder l2(p);  // the default pooling: unit norm
  const std::vector<float> v = l2.encode("Don't LIKE zzz coffee!");
  const float n = std::sqrt(3.f * 3 + 3 * 3 + 0.25f);
  EXPECT_NEAR(v[0], 3 / n, 1e-6);
  EXPECT_NEAR(v[1], -3 / n, 1e-6);
  EXPECT_NEAR(v[2], 0.5f / n, 1e-6);
  EXPECT_EQ(l2.encode("nothing known"), (std::vector<float>{0, 0, 0}));

  const std::vector<std::string> texts = {"coffee", "", "like well", "can't"};
  const std::vector<float> batch = l2.encode_batch(texts);
  ASSERT_EQ(batch.size(), texts.size() * 3);
  for (std::size_t i = 0; i < texts.size(); ++i)
    EXPECT_EQ(std::vector<float>(batch.begin() + 3 * i, batch.begin() + 3 * i + 3),
              l2.encode(texts[i]))
        << texts[i];
}

TEST_F(GloveFileTest, RefusesMissingTruncatedAndCorruptFiles) {
  const std::string good = glove_file(kToyWords, toy_vectors(), 3);
  auto refused = [&](const std::string& name, const std::string& content, const std::string& what) {
    SCOPED_TRACE(name);
    const auto p = write(name, content);
    expect_refused([&] { GloveEncoder e(p); }, p, what);
  };
  refused("empty.bin", "", "truncated");
  refused("short_header.bin", good.substr(0, 20), "truncated");
  refused("truncated.bin", good.substr(0, good.size() - 1), "truncated");
  refused("longer.bin", good + "x", "corrupt");
  std::string bad = good;
  bad[0] = 'X';
  refused("magic.bin", bad, "bad magic");
  bad = good;
  bad[8] = 2;
  refused("version.bin", bad, "unsupported version 2");
  bad = good;
  bad[16] = 0;  // dimension 0
  refused("dimension.bin", bad, "corrupt header");
  bad = good;
  bad[bad.size() - 2] ^= 0x10;  // one bit of one vector
  refused("bitflip.bin", bad, "checksum mismatch");
  refused("duplicate.bin", glove_file({"do", "like", "do"}, std::vector<float>(9, 1.f), 3),
          "duplicate word 'do'");
  refused("missing_hint.bin", good.substr(0, good.size() - 4), "scripts/setup.sh");

  const std::string missing = (dir_ / "nope.bin").string();
  expect_refused([&] { GloveEncoder e(missing); }, missing, "not found");
  expect_refused([&] { GloveEncoder e(dir_.string()); }, dir_.string(), "not a regular file");
  try {
    GloveEncoder::default_path(dir_.string());
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(dir_.string() + "/models/glove100.bin"), std::string::npos)
        << e.what();
  }
}

// ---- the real GloVe vectors against Node's reference --------------------------------------

TEST(GloveReference, MatchesNodeComputedMeans) {
  const fs::path bin = hetal::data::find_data("models/glove100.bin");
  if (bin.empty())
    GTEST_SKIP() << "data/models/glove100.bin is not installed; run scripts/setup.sh";
  const fs::path fixture = fs::path(__FILE__).parent_path() / "fixtures" / "glove_reference.json";
  std::ifstream in(fixture);
  ASSERT_TRUE(in) << fixture;
  const nlohmann::json ref = nlohmann::json::parse(in);

  const GloveEncoder mean(bin.string(), GloveEncoder::Pooling::kMean);
  ASSERT_EQ(mean.dimension(), ref.at("dimension").get<std::size_t>());
  ASSERT_EQ(mean.vocabulary_size(), ref.at("vocabulary_size").get<std::size_t>());
  const GloveEncoder l2(bin.string());

  std::vector<std::string> texts;
  for (const auto& c : ref.at("cases")) texts.push_back(c.at("text").get<std::string>());
  const std::vector<float> batch = l2.encode_batch(texts);
  const std::size_t d = mean.dimension();
  std::size_t i = 0;
  for (const auto& c : ref.at("cases")) {
    const std::string text = c.at("text").get<std::string>();
    SCOPED_TRACE(text);
    EXPECT_EQ(mean.tokens(text), c.at("tokens").get<std::vector<std::string>>());
    const auto expected = c.at("mean").get<std::vector<double>>();
    const std::vector<float> got = mean.encode(text);
    ASSERT_EQ(got.size(), expected.size());
    double max_err = 0, norm = 0;
    for (std::size_t k = 0; k < d; ++k) {
      max_err = std::max(max_err, std::abs(got[k] - expected[k]));
      norm += expected[k] * expected[k];
    }
    EXPECT_LE(max_err, 1e-4);
    norm = std::sqrt(norm);
    double max_err_l2 = 0;
    for (std::size_t k = 0; k < d; ++k)
      max_err_l2 =
          std::max(max_err_l2, std::abs(batch[i * d + k] - (norm > 0 ? expected[k] / norm : 0.0)));
    EXPECT_LE(max_err_l2, 1e-4);
    ++i;
  }
}

}  // namespace
