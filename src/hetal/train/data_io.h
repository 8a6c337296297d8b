// Features and labels from the files other tools write: NumPy `.npy` (what a PyTorch feature
// extractor saves with numpy.save) and `.csv`. Every malformed input gets an
// std::invalid_argument naming the file and the problem.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "hetal/matrix/layout.h"

namespace hetal::train {

/// A 2-D array (n x d; a 1-D array is n x 1) of any real or integer dtype, either byte order
/// and either memory order, from `.npy` (format versions 1-3), or a numeric `.csv` (a header
/// line of non-numbers is skipped; every row must have the same number of fields).
matrix::Matrix load_matrix(const std::string& path);

/// Labels: a 1-D array (or n x 1) of non-negative integers, from `.npy` or `.csv`.
std::vector<std::size_t> load_labels(const std::string& path);

}  // namespace hetal::train
