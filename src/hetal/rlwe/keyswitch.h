// Hybrid key switching (Han-Ki, CT-RSA 2020) split into its hoistable parts
// (Halevi-Shoup, CRYPTO 2018; Bossuat et al., EUROCRYPT 2021):
//   decompose  : INTT, split into dnum digits, ModUp each digit to Q_l P, NTT   (once per input)
//   inner_product: sum_d digit_d * key_d over Q_l P, optionally through an automorphism, which
//                is a permutation of NTT slots and commutes with the decomposition
//   mod_down   : divide by P and round back to Q_l.
#pragma once

#include <cstdint>
#include <vector>

#include "hetal/rlwe/keys.h"
#include "hetal/rns/rns_context.h"

namespace hetal::rlwe {

/// Digits of a polynomial raised to Q_l P, in NTT form: what hoisted rotations share.
struct Decomposition {
  std::vector<RnsPoly> digits;
  std::size_t nq = 0;
};

Decomposition decompose(const rns::RnsContext& ctx, const RnsPoly& c_ntt);

/// (acc0, acc1) = sum_d perm(digit_d) * (b_d, a_d) over Q_l P (lazy: no ModDown).
/// `perm` (an NTT-domain automorphism map) may be null.
void inner_product(const rns::RnsContext& ctx, const Decomposition& dec, const SwitchingKey& key,
                   const std::uint32_t* perm, RnsPoly& acc0, RnsPoly& acc1);

/// Full key switch of c (NTT form, nq limbs): (out0, out1) with out0 + out1 s = c s_from + e.
void key_switch(const rns::RnsContext& ctx, const RnsPoly& c_ntt, const SwitchingKey& key,
                RnsPoly& out0, RnsPoly& out1);

}  // namespace hetal::rlwe
