#include "hetal/circuits/mod1/mod1.h"

#include <cmath>
#include <numbers>
#include <stdexcept>
#include <string>

namespace hetal::circuits {

Mod1Evaluator::Mod1Evaluator(const ckks::Context& ctx, const ckks::Evaluator& ev,
                             const rlwe::RelinKey& rlk, Mod1Parameters params)
    : ctx_(ctx),
      ev_(ev),
      rlk_(rlk),
      p_(params),
      cos_(Polynomial::interpolate(
          [k = static_cast<double>(params.k), r = static_cast<double>(1u << params.double_angle)](
              double t) { return std::cos(2 * std::numbers::pi * ((k + 1) * t - 0.25) / r); },
          -1, 1, params.degree)),
      pe_(ctx, ev, rlk) {
  if (params.k == 0 || params.degree == 0)
    throw std::invalid_argument("mod1: K and degree must be positive");
  if (params.i_terms > 0) {
    // I ~ the sum of i_terms uniforms on [-1/2, 1/2]: Gaussian of variance i_terms / 12 (the
    // Irwin-Hall density at 33 terms differs by ~0.1 %).
    const double var = static_cast<double>(params.i_terms) / 12.0;
    const auto k = static_cast<long>(params.k);
    double wsum = 0, sum = 0;
    for (long i = -k; i <= k; ++i) {
      const double w = std::exp(-static_cast<double>(i * i) / (2 * var));
      wsum += w;
      sum += w * approximation(static_cast<double>(i));
    }
    bias_ = sum / wsum;
  }
}

double Mod1Evaluator::approximation(double x) const {
  double c = cos_(x / static_cast<double>(p_.k + 1));
  for (std::size_t i = 0; i < p_.double_angle; ++i) c = 2 * c * c - 1;
  return c;
}

std::size_t Mod1Evaluator::depth() const {
  return PolynomialEvaluator::depth(cos_) + p_.double_angle;
}

ckks::Ciphertext Mod1Evaluator::evaluate(const ckks::Ciphertext& t, double output_scale) const {
  if (t.level() < depth()) {
    throw std::invalid_argument("mod1 needs " + std::to_string(depth()) + " levels, input has " +
                                std::to_string(t.level()));
  }
  double cos_scale = 0;
  if (output_scale > 0) {
    // Double angle i squares at level l_i = (cosine's output level) - i and rescales by q_{l_i}.
    const std::size_t l0 = t.level() - PolynomialEvaluator::depth(cos_);
    cos_scale = output_scale;
    for (std::size_t i = p_.double_angle; i-- > 0;)
      cos_scale = std::sqrt(cos_scale * static_cast<double>(ctx_.params().q_primes[l0 - i]));
  }
  ckks::Ciphertext c = pe_.evaluate(t, cos_, cos_scale);
  for (std::size_t i = 0; i < p_.double_angle; ++i) {
    // cos(2u) = 2 cos(u)^2 - 1
    ev_.square_inplace(c);
    ev_.relinearize_inplace(c, rlk_);
    ev_.multiply_integer_inplace(c, 2);
    ev_.add_const_inplace(c, -1.0);
    ev_.rescale_inplace(c);
  }
  if (output_scale > 0) c.scale = output_scale;  // equal up to floating-point rounding
  if (bias_ != 0) ev_.add_const_inplace(c, -bias_);
  return c;
}

}  // namespace hetal::circuits
