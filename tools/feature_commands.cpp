#include "feature_commands.h"

#include <cstdio>
#include <system_error>
#include <vector>

#include "cli_util.h"
#include "hetal/data/text_datasets.h"
#include "hetal/features/cache.h"
#include "hetal/features/image_extractor.h"
#include "hetal/features/text_encoder.h"

namespace hetal::cli {

namespace fs = std::filesystem;

void ImageFeatureChoice::add_options(CLI::App* c) {
  std::string layers;
  for (const auto& l : features::ImageFeatureExtractor::layers())
    layers += (layers.empty() ? "" : ", ") + l;
  c->add_option("--layer", layer, "MobileNetV2 layer whose pooled output is the feature: " + layers)
      ->capture_default_str();
  c->add_option("--input-size", input_size,
                "images are resized to this square size (multiple of 32)")
      ->capture_default_str();
  c->add_option("--extract-batch", batch, "images per forward pass")->capture_default_str();
  c->add_option("--model", model, "ONNX model (default: data/models/mobilenet_v2.onnx)");
  c->add_option("--cache", cache, "feature cache folder (default: ~/.cache/hetal/features)");
  c->add_flag("--no-cache{false}", use_cache, "extract again even if cached");
}

namespace {

features::ExtractorOptions extractor_options(const ImageFeatureChoice& c) {
  features::ExtractorOptions o;
  o.model_path = c.model;
  o.layer = c.layer;
  o.input_size = c.input_size;
  o.batch = c.batch;
  return o;
}

/// The folder with the features of `source`: the cache entry if complete, else extracted now.
fs::path image_features(const features::ImageSource& source, const ImageFeatureChoice& choice,
                        const fs::path& scratch) {
  features::ImageFeatureExtractor ex(extractor_options(choice));
  const std::string what = "MobileNetV2 " + choice.layer + " (" + std::to_string(ex.dimension()) +
                           "-d, input " + std::to_string(choice.input_size) + ")";
  const fs::path dir = choice.use_cache
                           ? features::cache_entry(features::cache_root(choice.cache),
                                                   ex.fingerprint() + "|" + source.fingerprint())
                           : scratch;
  if (choice.use_cache && features::has_feature_set(dir)) {
    std::fprintf(stderr, "features of %s: %s, cached in %s\n", source.describe().c_str(),
                 what.c_str(), dir.c_str());
    return dir;
  }
  const auto t0 = Clock::now();
  const auto bar = progress_bar("[extract]");
  features::FeatureSet set;
  set.x = ex.extract(source, [&](std::size_t done, std::size_t total) {
    bar(done, total, source.describe() + " images");
  });
  set.rows = source.size();
  set.cols = ex.dimension();
  for (auto v : source.labels()) set.y.push_back(static_cast<std::int64_t>(v));
  set.class_names = source.class_names();
  set.description = source.describe() + ": " + what;
  features::save_feature_set(dir, set);
  const double s = since(t0);
  std::fprintf(stderr, "features of %s: %s, %zu images in %.1f s (%.1f ms per image) -> %s\n",
               source.describe().c_str(), what.c_str(), set.rows, s,
               set.rows ? 1e3 * s / static_cast<double>(set.rows) : 0.0, dir.c_str());
  return dir;
}

}  // namespace

std::size_t ImageFeatureChoice::dimension() const {
  return features::ImageFeatureExtractor(extractor_options(*this)).dimension();
}

fs::path builtin_image_features(const std::string& dataset, const std::string& split,
                                std::size_t limit, const ImageFeatureChoice& choice) {
  auto src = features::builtin_source(dataset, split);
  if (limit && limit < src->size()) {
    // The whole split's features, if cached, hold the first `limit` rows too.
    if (choice.use_cache) {
      features::ImageFeatureExtractor ex(extractor_options(choice));
      const fs::path whole = features::cache_entry(features::cache_root(choice.cache),
                                                   ex.fingerprint() + "|" + src->fingerprint());
      if (features::has_feature_set(whole)) return whole;
    }
    src = features::slice(std::move(src), 0, limit);
  }
  return image_features(
      *src, choice, fs::temp_directory_path() / ("hetal-features-" + std::to_string(::getpid())));
}

struct FeatureCommands::Impl {
  CLI::App* extract = nullptr;
  ImageFeatureChoice choice;
  std::string dataset, split = "train", images, idx_images, idx_labels, out, text_dataset,
                       text_file, glove;
  std::size_t limit = 0;
};

FeatureCommands::FeatureCommands(CLI::App& app) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  CLI::App* client = app.get_subcommand("client");
  m.extract = client->add_subcommand(
      "extract", "features of images (or text) by a frozen pre-trained model, as .npy files");
  m.extract->add_option("--dataset", m.dataset, "built-in image set: mnist or fashion-mnist");
  m.extract->add_option("--split", m.split, "train or test (built-in sets)")->capture_default_str();
  m.extract->add_option("--images", m.images, "a folder with one sub-folder of images per class");
  m.extract->add_option("--idx-images", m.idx_images, "an IDX image file (with --idx-labels)");
  m.extract->add_option("--idx-labels", m.idx_labels, "the IDX label file of --idx-images");
  m.extract->add_option("--text-dataset", m.text_dataset,
                        "built-in text set: fine-foods, reuters-corn, reuters-grain, austen");
  m.extract->add_option("--text", m.text_file,
                        "a text file: label<TAB>text per line (.tsv) or a Weka .arff");
  m.extract->add_option("--glove", m.glove, "GloVe vectors (default: data/models/glove100.bin)");
  m.extract->add_option("--limit", m.limit, "only the first n inputs (0: all)");
  m.extract
      ->add_option("--out", m.out,
                   "output folder: features.npy, labels.npy, classes.txt, source.txt")
      ->required();
  m.choice.add_options(m.extract);
}

FeatureCommands::~FeatureCommands() = default;

/// Texts through GloVe: fast enough (~µs a text) that no cache is needed.
bool FeatureCommands::run_text(int& code) {
  Impl& m = *impl_;
  code = 0;
  const auto t0 = Clock::now();
  data::TextDataset d;
  std::string what;
  if (!m.text_dataset.empty()) {
    d = data::load_builtin_text(m.text_dataset, m.split);
    what = m.text_dataset + " " + m.split;
  } else {
    const bool arff = fs::path(m.text_file).extension() == ".arff";
    d = arff ? data::load_text_arff(m.text_file) : data::load_text_tsv(m.text_file);
    what = m.text_file;
  }
  if (m.limit && m.limit < d.texts.size()) {
    d.texts.resize(m.limit);
    d.labels.resize(m.limit);
  }
  const features::GloveEncoder enc =
      m.glove.empty() ? features::GloveEncoder() : features::GloveEncoder(m.glove);
  features::FeatureSet set;
  set.x = enc.encode_batch(d.texts);
  set.rows = d.texts.size();
  set.cols = enc.dimension();
  for (auto v : d.labels) set.y.push_back(static_cast<std::int64_t>(v));
  set.class_names = d.class_names;
  set.description = what + ": GloVe 6B " + std::to_string(enc.dimension()) +
                    "-d, mean of word vectors, unit norm";
  features::save_feature_set(m.out, set);
  std::printf("%zu texts -> %zu x %zu GloVe features in %.2f s, written to %s\n", set.rows,
              set.rows, set.cols, since(t0), m.out.c_str());
  return true;
}

bool FeatureCommands::run(int& code) {
  Impl& m = *impl_;
  code = 0;
  if (!*m.extract) return false;
  const int given = !m.dataset.empty() + !m.images.empty() + !m.idx_images.empty() +
                    !m.text_dataset.empty() + !m.text_file.empty();
  if (given != 1)
    throw CLI::ValidationError("extract",
                               "give exactly one of --dataset, --images, --idx-images, "
                               "--text-dataset, --text");
  if (!m.text_dataset.empty() || !m.text_file.empty()) return run_text(code);
  std::unique_ptr<features::ImageSource> src;
  if (!m.dataset.empty()) {
    src = features::builtin_source(m.dataset, m.split);
  } else if (!m.images.empty()) {
    src = features::folder_source(m.images);
  } else {
    if (m.idx_labels.empty()) throw CLI::ValidationError("--idx-images", "needs --idx-labels");
    src = features::idx_source(m.idx_images, m.idx_labels);
  }
  if (m.limit && m.limit < src->size()) src = features::slice(std::move(src), 0, m.limit);
  const fs::path dir = image_features(*src, m.choice, m.out);
  if (fs::weakly_canonical(dir) != fs::weakly_canonical(m.out))
    features::copy_feature_set(dir, m.out);
  std::printf("%zu x %s features written to %s (features.npy, labels.npy, classes.txt)\n",
              src->size(), m.choice.layer.c_str(), m.out.c_str());
  return true;
}

}  // namespace hetal::cli
