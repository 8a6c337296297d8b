#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <stdexcept>
#include <system_error>

#include "hetal/data/files.h"
#include "hetal/data/idx.h"
#include "hetal/features/image.h"

namespace hetal::features {

namespace fs = std::filesystem;

std::string fnv1a_hex(const void* data, std::size_t n, std::uint64_t h) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  static const char* digits = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, h >>= 4) s[static_cast<std::size_t>(i)] = digits[h & 15];
  return s;
}

namespace {

std::string labels_fingerprint(const std::vector<std::size_t>& y) {
  return fnv1a_hex(y.data(), y.size() * sizeof(std::size_t));
}

class IdxSource : public ImageSource {
 public:
  IdxSource(const std::string& images_path, const std::string& labels_path, std::string name)
      : images_(data::load_idx_images(images_path)), name_(std::move(name)) {
    labels_ = data::load_idx_labels(labels_path, 10);
    if (labels_.size() != images_.count)
      throw std::invalid_argument("image and label counts differ: " + images_path + " has " +
                                  std::to_string(images_.count) + " images, " + labels_path +
                                  " has " + std::to_string(labels_.size()) + " labels");
    for (int c = 0; c < 10; ++c) class_names_.push_back(std::to_string(c));
  }
  std::size_t size() const override { return images_.count; }
  Image image(std::size_t i) const override {
    Image im;
    im.height = images_.rows;
    im.width = images_.cols;
    im.channels = 1;
    const std::size_t n = im.height * im.width;
    const auto first = images_.pixels.begin() + static_cast<std::ptrdiff_t>(i * n);
    im.pixels.assign(first, first + static_cast<std::ptrdiff_t>(n));
    return im;
  }
  std::string fingerprint() const override {
    return "idx:" + fnv1a_hex(images_.pixels.data(), images_.pixels.size()) + ":" +
           labels_fingerprint(labels_);
  }
  std::string describe() const override { return name_; }

 private:
  data::IdxImages images_;
  std::string name_;
};

bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const char* e : {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"})
    if (ext == e) return true;
  return false;
}

class FolderSource : public ImageSource {
 public:
  explicit FolderSource(const std::string& root) : root_(root) {
    std::error_code ec;
    if (!fs::is_directory(root_, ec))
      throw std::invalid_argument(root +
                                  ": no such folder (expected one sub-folder of images "
                                  "per class)");
    std::vector<fs::path> classes;
    for (fs::directory_iterator it(root_, ec), end; !ec && it != end; it.increment(ec))
      if (it->is_directory(ec)) classes.push_back(it->path());
    if (ec) throw std::invalid_argument(root + ": cannot list the folder (" + ec.message() + ")");
    std::sort(classes.begin(), classes.end());
    if (classes.empty())
      throw std::invalid_argument(root + ": no class folders (expected " + root +
                                  "/<class>/<image> for every class)");
    if (classes.size() < 2)
      throw std::invalid_argument(root + ": only one class folder (" +
                                  classes[0].filename().string() +
                                  "); a classifier needs at least two");
    for (std::size_t c = 0; c < classes.size(); ++c) {
      std::vector<fs::path> files;
      for (fs::directory_iterator it(classes[c], ec), end; !ec && it != end; it.increment(ec))
        if (it->is_regular_file(ec) && is_image_file(it->path())) files.push_back(it->path());
      if (ec)
        throw std::invalid_argument(classes[c].string() + ": cannot list the folder (" +
                                    ec.message() + ")");
      if (files.empty())
        throw std::invalid_argument(classes[c].string() +
                                    ": class folder without images (.png, .jpg, .jpeg, .bmp, "
                                    ".tif, .webp, .pgm, .ppm)");
      std::sort(files.begin(), files.end());
      for (auto& f : files) {
        files_.push_back(std::move(f));
        labels_.push_back(c);
      }
      class_names_.push_back(classes[c].filename().string());
    }
  }
  std::size_t size() const override { return files_.size(); }
  Image image(std::size_t i) const override {
    const std::string path = files_[i].string();
    cv::Mat m = cv::imread(path, cv::IMREAD_COLOR);
    if (m.empty())
      throw std::invalid_argument(path +
                                  ": cannot decode the image (corrupt, truncated or not "
                                  "an image)");
    cv::cvtColor(m, m, cv::COLOR_BGR2RGB);
    Image im;
    im.height = static_cast<std::size_t>(m.rows);
    im.width = static_cast<std::size_t>(m.cols);
    im.channels = 3;
    im.pixels.resize(im.height * im.width * 3);
    for (int r = 0; r < m.rows; ++r)
      std::copy_n(m.ptr<std::uint8_t>(r), im.width * 3,
                  im.pixels.data() + static_cast<std::size_t>(r) * im.width * 3);
    return im;
  }
  std::string fingerprint() const override {
    // Names, sizes and contents of every file.
    std::string all;
    for (std::size_t i = 0; i < files_.size(); ++i) {
      std::ifstream f(files_[i], std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(f)), {});
      all += files_[i].lexically_relative(root_).string() + ":" +
             fnv1a_hex(bytes.data(), bytes.size()) + ";";
    }
    return "folder:" + fnv1a_hex(all.data(), all.size()) + ":" + labels_fingerprint(labels_);
  }
  std::string describe() const override { return "folder " + root_.string(); }

 private:
  fs::path root_;
  std::vector<fs::path> files_;
};

class Slice : public ImageSource {
 public:
  Slice(std::unique_ptr<ImageSource> s, std::size_t begin, std::size_t end)
      : s_(std::move(s)), begin_(begin), end_(end) {
    if (begin > end || end > s_->size())
      throw std::invalid_argument("image range [" + std::to_string(begin) + ", " +
                                  std::to_string(end) + ") outside " + s_->describe() + " (" +
                                  std::to_string(s_->size()) + " images)");
    labels_.assign(s_->labels().begin() + static_cast<std::ptrdiff_t>(begin),
                   s_->labels().begin() + static_cast<std::ptrdiff_t>(end));
    class_names_ = s_->class_names();
  }
  std::size_t size() const override { return end_ - begin_; }
  Image image(std::size_t i) const override { return s_->image(begin_ + i); }
  std::string fingerprint() const override {
    return s_->fingerprint() + ":" + std::to_string(begin_) + "-" + std::to_string(end_);
  }
  std::string describe() const override {
    return s_->describe() + " [" + std::to_string(begin_) + ", " + std::to_string(end_) + ")";
  }

 private:
  std::unique_ptr<ImageSource> s_;
  std::size_t begin_, end_;
};

}  // namespace

std::unique_ptr<ImageSource> idx_source(const std::string& images_path,
                                        const std::string& labels_path) {
  return std::make_unique<IdxSource>(images_path, labels_path, images_path);
}

std::unique_ptr<ImageSource> builtin_source(const std::string& name, const std::string& split,
                                            const std::string& data_root) {
  const data::IdxFiles f = data::builtin_idx_files(name, split, data_root);
  return std::make_unique<IdxSource>(f.images, f.labels, name + " " + split);
}

std::unique_ptr<ImageSource> folder_source(const std::string& root) {
  return std::make_unique<FolderSource>(root);
}

std::unique_ptr<ImageSource> slice(std::unique_ptr<ImageSource> source, std::size_t begin,
                                   std::size_t end) {
  return std::make_unique<Slice>(std::move(source), begin, end);
}

}  // namespace hetal::features
