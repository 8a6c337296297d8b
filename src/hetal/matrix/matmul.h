// Encrypted matrix products of HETAL (hetal.md section 4) and the baselines they are compared
// with (hetal.md 4.5). All run through an Executor: on ciphertexts, or as a dry run that only
// counts operations (hetal.md 4.4, Table 7) and lists the rotation keys and masks needed.
//
//   product  algorithm        A layout                 B layout               result layout
//   A B^T    diag_abt         blocks a x b             tiled_rows c x b (W)   tiled_cols a x c
//                                                                            (blocks with compact)
//   A B^T    colmajor_abt     blocks a x b             blocks c x b           blocks a x c
//   A B^T    jin_abt          columns a x b            scalars c x b          columns a x c
//   A^T B    diag_atb         tiled_cols a x c (P-Y)   blocks a x b (X)       tiled_rows c x b
//   A^T B    rowmajor_atb     blocks a x c             blocks a x b           blocks c x b
//   A^T B    jin_atb          columns a x c            columns a x b          scalars c x b
//
// diag_abt's result is what diag_atb takes as A, and diag_atb's result has W's layout, so a
// training step (Z = X W^T, then W -= lr (P - Y)^T X) needs no re-packing (hetal.md 3, 4.1).
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "hetal/matrix/enc_matrix.h"
#include "hetal/matrix/executor.h"
#include "hetal/matrix/layout.h"

namespace hetal::matrix {

enum class AbtOutput {
  tiled,    ///< a x c horizontally tiled: DiagATB's left operand (the training loop)
  compact,  ///< a x c in the first c_pad columns of each block (e.g. logits for the client)
};

enum class AtbVariant {
  automatic,  ///< by the operands' levels (see choose_atb_variant)
  prot,       ///< partial rotations of A (hetal.md 4.3 variant PRot)
  prot_up,    ///< plain rotations of A, "partial rotate up" of B (variant PRotUp)
  /// Not in HETAL: diagonals of A taken along the rows (row offset d, column (r - d) mod c),
  /// so that the reduction over rows becomes one fold per output block instead of a column
  /// sum per diagonal. See README.md. Levels: A 3, B 1 (HETAL: A 3-4, B 2-3).
  fold,
};

/// C = A B^T (hetal.md 4.2). A: blocks a x b; B: tiled_rows c x b.
/// Levels: output = min(lvl A, lvl B) - 3.
EncMatrix diag_abt(Executor& ex, const EncMatrix& a, const EncMatrix& b,
                   AbtOutput out = AbtOutput::tiled);

/// G = A^T B (hetal.md 4.3). A: tiled_cols a x c; B: blocks a x b.
EncMatrix diag_atb(Executor& ex, const EncMatrix& a, const EncMatrix& b,
                   AtbVariant v = AtbVariant::automatic);

/// The variant `automatic` picks. With Options::paper(): HETAL's rule, PRotUp iff lvl A < lvl B.
/// Otherwise the variant with the highest output level among fold (if Options::fold_atb),
/// PRot and PRotUp, in that order on a tie (fewest operations first).
AtbVariant choose_atb_variant(const Options& opt, std::size_t level_a, std::size_t level_b,
                              std::size_t c_pad);
/// Output level of diag_atb for a variant (not automatic).
std::size_t atb_output_level(const Options& opt, AtbVariant v, std::size_t level_a,
                             std::size_t level_b, std::size_t c_pad);

/// Crockett's ColMajor A B^T (hetal.md 4.5). A: blocks a x b; B: blocks c x b.
EncMatrix colmajor_abt(Executor& ex, const EncMatrix& a, const EncMatrix& b);
/// Crockett's RowMajor A^T B. A: blocks a x c; B: blocks a x b.
EncMatrix rowmajor_atb(Executor& ex, const EncMatrix& a, const EncMatrix& b);
/// Jin et al. A B^T: A columns a x b, B scalars c x b.
EncMatrix jin_abt(Executor& ex, const EncMatrix& a, const EncMatrix& b);
/// Jin et al. A^T B: A columns a x c, B columns a x b.
EncMatrix jin_atb(Executor& ex, const EncMatrix& a, const EncMatrix& b);

// ----------------------------------------------------------------- uniform front end

enum class Algorithm {
  jin_abt,
  colmajor_abt,
  diag_abt,
  jin_atb,
  rowmajor_atb,
  diag_atb_prot,
  diag_atb_prot_up,
  diag_atb_fold,
};
inline constexpr Algorithm kAllAlgorithms[] = {
    Algorithm::jin_abt,          Algorithm::colmajor_abt, Algorithm::diag_abt,
    Algorithm::jin_atb,          Algorithm::rowmajor_atb, Algorithm::diag_atb_prot,
    Algorithm::diag_atb_prot_up, Algorithm::diag_atb_fold};

const char* algorithm_name(Algorithm a);
bool is_abt(Algorithm a);

/// A product of HETAL's notation (hetal.md 4): A B^T with A a x b, B c x b (result a x c), or
/// A^T B with A a x c, B a x b (result c x b), in s0 x s1 blocks.
struct Problem {
  std::size_t a = 0, b = 0, c = 0;
  BlockShape block;
  /// HETAL's unit shape for batch a and c classes (training_block_shape).
  static Problem with_training_block(std::size_t a, std::size_t b, std::size_t c,
                                     std::size_t slots);
  std::string str() const;
};

/// Input layouts of an algorithm for a problem.
std::pair<Layout, Layout> input_layouts(Algorithm alg, const Problem& p);
/// Plain shapes of the inputs: (rows, cols) of A and of B.
std::pair<std::pair<std::size_t, std::size_t>, std::pair<std::size_t, std::size_t>> input_shapes(
    Algorithm alg, const Problem& p);
/// Runs an algorithm (diag_abt with tiled output).
EncMatrix run(Executor& ex, Algorithm alg, const EncMatrix& a, const EncMatrix& b);
/// The plain product the algorithm computes.
Matrix reference(Algorithm alg, const Matrix& a, const Matrix& b);
/// Iterations of the algorithm's outer loop (what Options::sample_outer limits).
std::size_t outer_iterations(Algorithm alg, const Problem& p);

/// What a dry run reports.
struct DryRun {
  OpCounts counts;
  std::vector<long long> rotation_steps;  ///< exactly the Galois keys to generate
  bool conjugation = false;
  std::size_t output_level = 0;
  Layout output;
};
/// Counts an algorithm without encrypting anything (inputs at the given levels).
DryRun dry_run(Algorithm alg, const Problem& p, const Options& opt, std::size_t level_a,
               std::size_t level_b);
/// The rotation steps an algorithm needs for a problem (keys for exactly these, plus
/// conjugation when DryRun::conjugation).
std::vector<long long> rotation_steps(Algorithm alg, const Problem& p, const Options& opt,
                                      std::size_t level_a, std::size_t level_b);

}  // namespace hetal::matrix
