// CryptoTL's lower network in plain arithmetic (Walch et al., arXiv 2205.11935; peers.md section
// 3): the weights the server owns, their file, and the plain forward pass the encrypted one is
// checked against. No HE and no libtorch here: the server's encrypted evaluator (hetal/cryptotl)
// reads the same file; the training that writes it is in torch_models.h.
//
//   x (d) -> Conv1D(1 filter, kernel 9, same padding) -> Dense d->d -> approx ReLU (degree 3)
//         -> AvgPool(3, stride 1) (d - 2) -> Dense (d-2)->(d-2)
//
// Conv1D and the first Dense are both linear, as are AvgPool and the second Dense, so the network
// is y = B act(A x + a) + b with A = W1 C and B = W2 P (fuse()): one linear transform on each side
// of the activation, two levels fewer than evaluating the four layers one by one.
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace hetal::nn {

inline constexpr std::size_t kConvKernel = 9;
/// CryptoTL's activation, trained in place: 0.49383 + 0.59259 x + 0.092593 x^2 - 0.0061728 x^3.
inline constexpr std::array<double, 4> kApproxRelu = {0.49383, 0.59259, 0.092593, -0.0061728};
/// Largest input dimension a model file may declare (bounds what a loader allocates).
inline constexpr std::size_t kMaxDim = 4096;

double approx_relu(double x);

struct LowerNetwork {
  std::size_t dim = 0;         ///< d, the input dimension (>= kConvKernel)
  std::vector<double> conv_w;  ///< kConvKernel taps: y_i = sum_t conv_w[t] x_{i+t-4} + conv_b
  double conv_b = 0;
  std::vector<double> w1, b1;  ///< d x d row-major (out x in), d
  std::vector<double> w2, b2;  ///< (d-2) x (d-2), d-2
  std::string source;          ///< what it was trained on (free text)

  std::size_t out_dim() const { return dim - 2; }
  /// Sizes consistent and every weight finite; std::invalid_argument saying what is wrong.
  void check() const;
};

/// y = B act(A x + a) + b: A (d x d), a (d), B ((d-2) x d), b (d-2), row-major.
struct FusedNetwork {
  std::size_t dim = 0, out_dim = 0;
  std::vector<double> a_mat, a_bias, b_mat, b_bias;
};
FusedNetwork fuse(const LowerNetwork& net);

/// The four layers one by one (the definition), for one input row of net.dim values.
std::vector<double> forward_layers(const LowerNetwork& net, std::span<const double> x);
/// The fused form: rows x dim in, rows x out_dim out (row-major).
std::vector<double> forward(const FusedNetwork& f, std::span<const double> x, std::size_t rows);

/// The server's private model file: magic "HETALTLN", version 1, the dimension, the source text,
/// the weights as float64, and a SHA-256 of everything before it. Written atomically, mode 0600.
void save_lower_network(const LowerNetwork& net, const std::string& path);
/// Errors (std::invalid_argument) name the file: missing, not a model file, another version, a
/// dimension out of range, truncated, trailing bytes, a checksum mismatch, non-finite weights.
LowerNetwork load_lower_network(const std::string& path);

}  // namespace hetal::nn
