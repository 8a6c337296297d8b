// The data sets of CryptoTL's transfer pairs as feature tables (no HE): the text sets through
// GloVe (text_encoder.h, 100-d, L2-normalised so every value is in [-1, 1]) and UCI Spambase
// (Debian r-cran-kernlab, exported by scripts/setup_text.sh), split into two disjoint halves so
// that one can be a source and the other a target.
#pragma once

#include <string>
#include <vector>

#include "hetal/features/cache.h"
#include "hetal/features/text_encoder.h"

namespace hetal::features {

/// "fine-foods", "reuters-corn", "reuters-grain", "austen" (GloVe features of the built-in text
/// sets) and "spam-a", "spam-b" (Spambase's 57 numeric columns; rows split in two halves by a
/// fixed seed, each half 75 % train / 25 % test).
std::vector<std::string> transfer_sets();

/// Spambase rows as features: each column log1p-transformed, then min-max scaled into [0, 1]
/// with its training rows' range (test values clipped into it).
/// `glove` is used for the text sets only (may be null for spam-a / spam-b). Errors
/// (std::invalid_argument) name the set and say what is missing.
FeatureSet load_transfer_set(const std::string& name, const std::string& split,
                             const GloveEncoder* glove, const std::string& data_root = "");

}  // namespace hetal::features
