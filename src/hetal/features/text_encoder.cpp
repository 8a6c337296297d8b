#include "hetal/features/text_encoder.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>

#include "hetal/data/files.h"

namespace hetal::features {

namespace {

constexpr char kMagic[8] = {'H', 'E', 'T', 'A', 'L', 'G', 'L', 'V'};
constexpr std::uint32_t kVersion = 1;
constexpr std::size_t kHeaderBytes = 32;
constexpr const char* kHint = "; run scripts/setup.sh to (re)make it";

std::uint32_t le32(const unsigned char* p) {
  return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 |
         std::uint32_t{p[3]} << 24;
}

/// FNV-1a over n little-endian 32-bit words (cheap in Node too, where the file is written).
std::uint32_t fnv_words(const unsigned char* p, std::size_t n) {
  std::uint32_t h = 0x811c9dc5u;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t x;
    std::memcpy(&x, p + 4 * i, 4);
    h = (h ^ x) * 0x01000193u;
  }
  return h;
}

/// Non-ASCII bytes count as letters: a word with "é" is then one unknown token, not "caf".
bool is_word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || static_cast<unsigned char>(c) >= 0x80;
}

bool is_clitic(std::string_view s) {
  return s == "s" || s == "re" || s == "ve" || s == "ll" || s == "d" || s == "m";
}

/// ASCII lowercase; ’ and ‘ become '\''; the UTF-8 punctuation and symbol blocks U+0080-U+00BF
/// (lead byte C2: nbsp, «, », ...) and U+2000-U+2FFF (lead byte E2: dashes, quotes, ...,
/// arrows) become spaces.
std::string normalise(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c >= 'A' && c <= 'Z') {
      out += static_cast<char>(c - 'A' + 'a');
    } else if (c == '\xC2' || c == '\xE2') {
      const std::size_t len = c == '\xC2' ? 2 : 3;
      std::size_t end = i + 1;
      while (end < i + len && end < text.size() && (text[end] & 0xC0) == 0x80) ++end;
      const bool quote = len == 3 && end == i + 3 && text[i + 1] == '\x80' &&
                         (text[i + 2] == '\x98' || text[i + 2] == '\x99');
      out += quote ? '\'' : ' ';
      i = end - 1;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

GloveEncoder::GloveEncoder(Pooling pooling) : GloveEncoder(default_path(), pooling) {}

GloveEncoder::GloveEncoder(const std::string& path, Pooling pooling)
    : path_(path), pooling_(pooling) {
  load(path);
}

std::string GloveEncoder::default_path(const std::string& data_root) {
  const std::string relative = "models/glove100.bin";
  const std::filesystem::path p = data::find_data(relative, data_root);
  if (!p.empty()) return p.string();
  std::string looked;
  for (const auto& root : data::data_roots(data_root))
    looked += (looked.empty() ? "" : ", ") + (root / relative).string() + ", " +
              (root / "data" / relative).string();
  throw std::invalid_argument("GloVe vectors " + relative + " not found (looked at " + looked +
                              "); run scripts/setup.sh");
}

void GloveEncoder::load(const std::string& path) {
  static_assert(std::endian::native == std::endian::little, "the file is little-endian");
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    data::fail(path, std::string("GloVe vectors not found") + kHint);
  if (!data::is_file(path)) data::fail(path, "not a regular file");
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) data::fail(path, "cannot read its size");
  if (size < kHeaderBytes)
    data::fail(path,
               "truncated: " + std::to_string(size) + " bytes, shorter than the header" + kHint);
  // Mapped, not read: copying 137 MB into fresh (zeroed, page-faulted) memory took ~0.8 s on a VM;
  // the mapping is populated from the page cache in one go.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) data::fail(path, std::string("cannot open: ") + std::strerror(errno));
  void* m = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) data::fail(path, std::string("cannot map: ") + std::strerror(errno));
  map_ = std::shared_ptr<const char>(
      static_cast<const char*>(m), [size](const char* p) { ::munmap(const_cast<char*>(p), size); });
  const auto* h = reinterpret_cast<const unsigned char*>(map_.get());

  if (std::memcmp(h, kMagic, sizeof kMagic) != 0)
    data::fail(path, std::string("not a GloVe vector file (bad magic)") + kHint);
  if (le32(h + 8) != kVersion)
    data::fail(path, "unsupported version " + std::to_string(le32(h + 8)) + kHint);
  const std::uint64_t n = le32(h + 12), d = le32(h + 16), w = le32(h + 20);
  const std::uint32_t checksum = le32(h + 24);
  if (n == 0 || d == 0 || d > 65536 || w % 4 != 0 || w < 2 * n)
    data::fail(path, "corrupt header (" + std::to_string(n) + " words, dimension " +
                         std::to_string(d) + ", " + std::to_string(w) + " bytes of words)" + kHint);
  const std::uint64_t expected = kHeaderBytes + w + 4 * n * d;
  if (size != expected)
    data::fail(path, (size < expected ? "truncated: " : "corrupt: ") + std::to_string(size) +
                         " bytes, the header says " + std::to_string(expected) + kHint);
  if (fnv_words(h + kHeaderBytes, (size - kHeaderBytes) / 4) != checksum)
    data::fail(path, std::string("corrupt: checksum mismatch") + kHint);
  words_ = std::string_view(map_.get() + kHeaderBytes, w);
  // The offset is a multiple of 4 in a page-aligned mapping.
  vectors_ = reinterpret_cast<const float*>(map_.get() + kHeaderBytes + w);

  index_.reserve(n);
  std::size_t at = 0;
  for (std::uint32_t i = 0; i < n; ++i) {
    const std::size_t len = static_cast<unsigned char>(words_[at]);
    if (len == 0 || at + 1 + len > w)
      data::fail(path, "corrupt word list at word " + std::to_string(i) + kHint);
    if (!index_.emplace(std::string_view(words_.data() + at + 1, len), i).second)
      data::fail(path, "corrupt: duplicate word '" + std::string(words_.substr(at + 1, len)) + "'" +
                           kHint);
    at += 1 + len;
  }
  for (; at < w; ++at)
    if (words_[at] != '\0') data::fail(path, std::string("corrupt word list padding") + kHint);
  count_ = n;
  dim_ = d;
}

const float* GloveEncoder::vector(std::string_view word) const {
  const auto it = index_.find(word);
  return it == index_.end() ? nullptr : vectors_ + std::size_t{it->second} * dim_;
}

template <class F>
void GloveEncoder::for_each_token(std::string_view s, F&& f) const {
  // A hyphenated piece: the compound if the vocabulary has it, else its parts.
  auto emit_piece = [&](std::string_view p) {
    while (!p.empty() && p.front() == '-') p.remove_prefix(1);
    while (!p.empty() && p.back() == '-') p.remove_suffix(1);
    if (p.empty()) return;
    if (p.find('-') == std::string_view::npos || index_.count(p) != 0) {
      f(p);
      return;
    }
    std::size_t start = 0;
    while (start <= p.size()) {
      std::size_t end = p.find('-', start);
      if (end == std::string_view::npos) end = p.size();
      if (end > start) f(p.substr(start, end - start));
      start = end + 1;
    }
  };
  std::size_t i = 0;
  while (i < s.size()) {
    if (!is_word_char(s[i]) && s[i] != '-' && s[i] != '\'') {
      ++i;
      continue;
    }
    std::size_t end = i;
    while (end < s.size() && (is_word_char(s[end]) || s[end] == '-' || s[end] == '\'')) ++end;
    // The run s[i, end): split at apostrophes, PTB-style clitics.
    std::string_view prev;  // the piece before the current apostrophe, not yet emitted
    bool have_prev = false;
    std::size_t start = i;
    while (start <= end) {
      std::size_t stop = s.find('\'', start);
      if (stop == std::string_view::npos || stop > end) stop = end;
      const std::string_view piece = s.substr(start, stop - start);
      const bool after_apostrophe = start > i;
      if (after_apostrophe && piece == "t" && have_prev && !prev.empty() && prev.back() == 'n') {
        prev.remove_suffix(1);  // "xn't": x, the clitic "n't" dropped
        emit_piece(prev);
        have_prev = false;
      } else {
        if (have_prev) emit_piece(prev);
        have_prev = !(after_apostrophe && is_clitic(piece));
        prev = piece;
      }
      start = stop + 1;
    }
    if (have_prev) emit_piece(prev);
    i = end;
  }
}

std::vector<std::string> GloveEncoder::tokens(const std::string& text) const {
  const std::string s = normalise(text);
  std::vector<std::string> out;
  for_each_token(s, [&](std::string_view t) { out.emplace_back(t); });
  return out;
}

void GloveEncoder::encode_into(const std::string& text, float* out) const {
  const std::string s = normalise(text);
  std::vector<double> sum(dim_, 0.0);  // double: reviews have hundreds of words
  std::size_t known = 0;
  for_each_token(s, [&](std::string_view t) {
    if (const float* v = vector(t)) {
      for (std::size_t k = 0; k < dim_; ++k) sum[k] += v[k];
      ++known;
    }
  });
  double scale = known == 0 ? 0.0 : 1.0 / static_cast<double>(known);
  if (pooling_ == Pooling::kMeanL2 && known != 0) {
    double norm2 = 0;
    for (double x : sum) norm2 += x * x;
    scale = norm2 > 0 ? 1.0 / std::sqrt(norm2) : 0.0;  // the mean's direction is the sum's
  }
  for (std::size_t k = 0; k < dim_; ++k) out[k] = static_cast<float>(sum[k] * scale);
}

std::vector<float> GloveEncoder::encode(const std::string& text) const {
  std::vector<float> out(dim_);
  encode_into(text, out.data());
  return out;
}

std::vector<float> GloveEncoder::encode_batch(const std::vector<std::string>& texts) const {
  std::vector<float> out(texts.size() * dim_);
  const auto n = static_cast<std::ptrdiff_t>(texts.size());
#pragma omp parallel for schedule(dynamic, 16)
  for (std::ptrdiff_t i = 0; i < n; ++i)
    encode_into(texts[static_cast<std::size_t>(i)],
                out.data() + static_cast<std::size_t>(i) * dim_);
  return out;
}

}  // namespace hetal::features
