#include "hetal/matrix/matmul.h"

#include <algorithm>
#include <bit>
#include <sstream>
#include <stdexcept>

namespace hetal::matrix {

namespace {

using std::size_t;

std::string shape(size_t r, size_t c) { return std::to_string(r) + "x" + std::to_string(c); }

void expect(const EncMatrix& m, Packing p, const char* who, const char* operand) {
  if (m.layout.packing != p) {
    throw std::invalid_argument(std::string(who) + ": operand " + operand + " must be " +
                                packing_name(p) + ", got " + m.layout.describe());
  }
  if (m.blocks.size() != m.layout.count()) {
    throw std::invalid_argument(std::string(who) + ": operand " + operand + " has " +
                                std::to_string(m.blocks.size()) + " ciphertexts, its layout " +
                                std::to_string(m.layout.count()));
  }
  for (const Ct& b : m.blocks) {
    if (b.tensor || b.unscaled) {
      throw std::invalid_argument(std::string(who) + ": unfinished product input");
    }
  }
}

void same_block(const EncMatrix& a, const EncMatrix& b, const char* who) {
  if (!(a.layout.block == b.layout.block)) {
    throw std::invalid_argument(std::string(who) + ": block shapes differ (" + a.layout.describe() +
                                " vs " + b.layout.describe() + ")");
  }
}

void start(Executor& ex, const EncMatrix& a, const EncMatrix& b) {
  if (a.is_shadow() != ex.dry() || b.is_shadow() != ex.dry()) {
    throw std::invalid_argument(ex.dry() ? "dry run needs shadow operands (EncMatrix::shadow)"
                                         : "operands are dry-run shadows, not ciphertexts");
  }
  ex.set_slots(a.layout.slots(), a.layout.block);
}

size_t sampled(const Executor& ex, size_t n) {
  const size_t s = ex.options().sample_outer;
  return s == 0 ? n : std::min(s, n);
}

// Steps {m, 2m, 4m, ..., (count/2) m}: a rotate-and-sum over `count` positions (count a power
// of two). Negative m replicates to the right.
std::vector<long long> doubling(size_t count, long long m) {
  std::vector<long long> s;
  for (size_t j = 1; j < count; j <<= 1) s.push_back(static_cast<long long>(j) * m);
  return s;
}

// Level after dropping every operand to a common level (same scale for every summand).
void drop_all(Executor& ex, std::vector<Ct>& v, size_t level) {
  for (Ct& c : v) {
    if (c.level > level) ex.drop(c, level);
  }
}

// x + y with the levels aligned (the engine drops the higher one).
Ct plus(Executor& ex, Ct x, const Ct& y) {
  ex.add(x, y);
  return x;
}

// [t < s1 - j]: the columns of an in-row rotation by j that a plain rotation gets right.
Mask low_mask(size_t j, size_t s1, Complex factor, const std::string& tag) {
  std::ostringstream k;
  k << "lo." << j << "." << tag;
  return {k.str(), [=](size_t, size_t t) { return t < s1 - j ? factor : Complex(0); }};
}

// PRot(x, j): cyclic left rotation by j within each row (hetal.md 4.3), 2 rotations + 1 mask:
// z = Rot(x, j) is right except in the last j columns, y = Rot(x, j - s1) exactly there.
// z and y are passed in (so that callers can hoist them).
Ct prot_combine(Executor& ex, const Ct& z, const Ct& y, size_t j, size_t s1, Complex factor,
                const std::string& tag) {
  Ct d = z;
  ex.sub(d, y);
  Ct masked = ex.cmult(d, low_mask(j, s1, factor, tag));
  Ct base = y;
  if (factor != Complex(1)) {
    // factor is i (imaginary half of a complexified operand)
    ex.mul_i(base);
  }
  ex.add(masked, base);
  return masked;
}

// PRot(x, j) as HETAL does it: z = Rot(x, j), y = Rot(z, -s1) (or both from x when hoisting).
Ct prot(Executor& ex, const Ct& x, size_t j, size_t s1) {
  Ct z, y;
  if (ex.options().hoist) {
    const long long st[] = {static_cast<long long>(j),
                            static_cast<long long>(j) - static_cast<long long>(s1)};
    auto r = ex.rot_many(x, st);
    z = std::move(r[0]);
    y = std::move(r[1]);
  } else {
    z = ex.rot(x, static_cast<long long>(j));
    y = ex.rot(z, -static_cast<long long>(s1));
  }
  return prot_combine(ex, z, y, j, s1, 1.0, "re");
}

// A' = A + i PRot(A, K): complexification of the tiled left operand of A^T B.
Ct complexify_tiled(Executor& ex, const Ct& a, size_t K, size_t s1) {
  Ct im = prot(ex, a, K, s1);
  ex.mul_i(im);
  return plus(ex, a, im);
}

EncMatrix output(const Layout& l) { return EncMatrix{l, std::vector<Ct>(l.count())}; }

bool same_residue(size_t x, size_t y, size_t m) { return x % m == y % m; }

}  // namespace

// ----------------------------------------------------------------------------- DiagABT

EncMatrix diag_abt(Executor& ex, const EncMatrix& A, const EncMatrix& B, AbtOutput out_kind) {
  const char* who = "diag_abt";
  expect(A, Packing::blocks, who, "A");
  expect(B, Packing::tiled_rows, who, "B");
  same_block(A, B, who);
  if (A.layout.cols != B.layout.cols) {
    throw std::invalid_argument(std::string(who) + ": A is " + shape(A.layout.rows, A.layout.cols) +
                                ", B is " + shape(B.layout.rows, B.layout.cols) +
                                ": A B^T needs equal column counts");
  }
  start(ex, A, B);
  const size_t s1 = A.layout.block.s1;
  const size_t na = A.layout.grid_rows(), nb = A.layout.grid_cols();
  const size_t cp = B.layout.period, K = cp / 2, Kr = sampled(ex, K);
  const bool tiled = out_kind == AbtOutput::tiled;
  const Layout out_layout = tiled ? Layout::tiled_cols(A.layout.rows, B.layout.rows, A.layout.block)
                                  : Layout::blocks(A.layout.rows, B.layout.rows, A.layout.block);

  // P[m][k] = sum_l A_{m,l} (.) Rot(B'_l, k s1), B'_l = B_l + i Rot(B_l, K s1) (hetal.md 4.2
  // steps 1, 2.1, 2.2). l is the outer loop so only one B'_l and its rotations are alive per
  // thread; threads sum interleaved subsets of l, then their partial sums are added.
  std::vector<long long> steps;
  for (size_t k = 1; k < Kr; ++k) steps.push_back(static_cast<long long>(k * s1));
  const size_t parts = std::min(ex.threads(), nb);
  std::vector<std::vector<std::vector<Ct>>> partial(
      parts, std::vector<std::vector<Ct>>(na, std::vector<Ct>(Kr)));
  ex.parallel_for(parts, [&](size_t part) {
    auto& P = partial[part];
    for (size_t l = part; l < nb; l += parts) {
      Ct bl = B.blocks[l];
      Ct im = ex.rot(bl, static_cast<long long>(K * s1));
      ex.mul_i(im);
      ex.add(bl, im);
      std::vector<Ct> R = ex.rot_many(bl, steps);
      R.insert(R.begin(), std::move(bl));
      for (size_t k = 0; k < Kr; ++k) {
        for (size_t m = 0; m < na; ++m) {
          Ct t = ex.mult(A.blocks[m * nb + l], R[k]);
          if (l == part) {
            P[m][k] = std::move(t);
          } else {
            ex.add(P[m][k], t);
          }
        }
      }
    }
  });
  std::vector<std::vector<Ct>>& P = partial[0];
  for (size_t part = 1; part < parts; ++part)
    for (size_t m = 0; m < na; ++m)
      for (size_t k = 0; k < Kr; ++k) ex.add(P[m][k], partial[part][m][k]);

  // Row sums into column 0, mask, replicate, diagonal mask (steps 2.3-2.5). With
  // compact_replicate each diagonal is replicated over c_pad columns only (hetal.md 9) and a
  // tiled result is made once per block at the end: log(s1/c_pad) rotations instead of
  // (c_pad/2) log(s1/c_pad).
  const bool compact = ex.options().compact_replicate;
  const bool masks_compact = !tiled || compact;
  const size_t repl = compact ? cp : s1;
  const Mask e0{"abt.e0", [](size_t, size_t t) { return t == 0 ? Complex(1) : Complex(0); }};
  const std::vector<long long> row_sum = doubling(s1, 1), replicate = doubling(repl, -1);
  std::vector<std::vector<Ct>> D(na, std::vector<Ct>(Kr));
  ex.parallel_for(na * Kr, [&](size_t item) {
    const size_t m = item / Kr, k = item % Kr;
    Ct p = std::move(P[m][k]);
    ex.finish(p);
    ex.rot_accumulate(p, row_sum);
    p = ex.cmult(p, e0);
    ex.rot_accumulate(p, replicate);
    // Re((x + iy)(u - iv)/2) = (xu + yv)/2, x = C[r, r+k], y = C[r, r+k+K] (mod c_pad);
    // the 1/2 is undone by the final Acc + conj(Acc).
    std::ostringstream key;
    key << "abt.diag." << k << "." << cp << (masks_compact ? ".compact" : ".tiled");
    const Mask diag{key.str(), [=](size_t r, size_t t) {
                      if (masks_compact && t >= cp) return Complex(0);
                      if (same_residue(t, r + k, cp)) return Complex(0.5);
                      if (same_residue(t, r + k + K, cp)) return Complex(0, -0.5);
                      return Complex(0);
                    }};
    D[m][k] = ex.cmult_lazy(p, diag);
  });
  EncMatrix C = output(out_layout);
  ex.parallel_for(na, [&](size_t m) {
    Ct acc = std::move(D[m][0]);
    for (size_t k = 1; k < Kr; ++k) ex.add(acc, D[m][k]);
    ex.finish(acc);
    Ct cj = ex.conj(acc);
    ex.add(acc, cj);  // step 3: 2 Re(Acc)
    if (tiled && compact) ex.rot_accumulate(acc, doubling(s1 / cp, -static_cast<long long>(cp)));
    C.blocks[m] = std::move(acc);
  });
  return C;
}

// ----------------------------------------------------------------------------- DiagATB

std::size_t atb_output_level(const Options& opt, AtbVariant v, std::size_t la, std::size_t lb,
                             std::size_t cp) {
  const std::size_t K = cp / 2;
  auto sub = [](std::size_t x, std::size_t d) { return x >= d ? x - d : std::size_t{0}; };
  if (v == AtbVariant::fold) return sub(std::min(sub(la, 2), lb), 1);  // two masks on A, Mult
  std::size_t mult_level = 0;
  if (v == AtbVariant::prot) {
    // A' costs a mask, PRot(A', k) another; fused: one mask for both (hetal.md 4.3).
    mult_level = std::min(opt.fused_prot || K == 1 ? sub(la, 1) : sub(la, 2), lb);
  } else {
    mult_level = std::min(sub(la, 1), K > 1 ? sub(lb, 1) : lb);
  }
  return sub(mult_level, 2);  // Mult, diagonal mask
}

AtbVariant choose_atb_variant(const Options& opt, std::size_t la, std::size_t lb, std::size_t cp) {
  if (!opt.fused_prot && !opt.fold_atb) return la < lb ? AtbVariant::prot_up : AtbVariant::prot;
  AtbVariant best = AtbVariant::automatic;
  std::size_t best_level = 0;
  for (AtbVariant v : {AtbVariant::fold, AtbVariant::prot, AtbVariant::prot_up}) {
    if (v == AtbVariant::fold && !opt.fold_atb) continue;
    const std::size_t l = atb_output_level(opt, v, la, lb, cp);
    if (best == AtbVariant::automatic || l > best_level) {
      best = v;
      best_level = l;
    }
  }
  return best;
}

namespace {

// DiagATB by row-offset diagonals (not in HETAL). With rho = r + d cyclic inside a block
// (s0 is a multiple of c_pad) and d = delta + g c_pad:
//   Out(r, t) = sum_rho A[rho, r mod cp] B[rho, t] = sum_{delta < cp} Rot(F_delta, delta s1),
//   F_delta = fold(At_delta (.) B),  fold(Y) = sum_g Rot(Y, g cp s1),
// where At_delta(rho, .) = A[rho, (rho - delta) mod cp] is constant along the row. Rotations
// commute, so Out = fold(sum_delta Rot(At_delta, delta s1) (.) Rot(B, delta s1)): the shifts of
// each B block are hoisted, the products summed before one relinearization, and the whole
// reduction over rows is one fold of log(s0/cp) rotations per output block (HETAL: a column
// sum of log s0 rotations per diagonal and block). Complexified: X holds the pairs delta,
// delta + K; Out = 2 Re(X - i Rot(X, K s1)) since Re(-i z) = Im z.
EncMatrix diag_atb_fold(Executor& ex, const EncMatrix& A, const EncMatrix& B) {
  const size_t s0 = A.layout.block.s0, s1 = A.layout.block.s1;
  const size_t na = A.layout.grid_rows(), nb = B.layout.grid_cols();
  const size_t cp = A.layout.period, K = cp / 2, Kr = sampled(ex, K);
  std::vector<long long> shifts;
  for (size_t d = 1; d < Kr; ++d) shifts.push_back(static_cast<long long>(d * s1));

  // A side: T[m][delta] = Rot(At'_delta, delta s1)(rho) = (A[rho+delta, rho] + i A[rho+delta,
  // rho+K]) / 2 on the whole row: mask one entry per period, sum each window of cp columns
  // (right except in the last cp-1 columns, which read the next row), then take those from
  // the window cp columns to the left.
  const Mask pick{"fold.pick." + std::to_string(cp), [=](size_t r, size_t t) {
                    if (same_residue(t, r, cp)) return Complex(0.5);
                    if (same_residue(t, r + K, cp)) return Complex(0, 0.5);
                    return Complex(0);
                  }};
  const Mask first{"fold.first." + std::to_string(cp),
                   [=](size_t, size_t t) { return t < cp ? Complex(1) : Complex(0); }};
  const Mask e0{"fold.e0", [](size_t, size_t t) { return t == 0 ? Complex(1) : Complex(0); }};
  const std::vector<long long> window = doubling(cp, 1), spread = doubling(s1, -1);
  std::vector<std::vector<Ct>> rows(na), T(na, std::vector<Ct>(Kr));
  ex.parallel_for(na, [&](size_t m) {
    rows[m] = ex.rot_many(A.blocks[m], shifts);
    rows[m].insert(rows[m].begin(), A.blocks[m]);
  });
  ex.parallel_for(na * Kr, [&](size_t item) {
    const size_t m = item / Kr, d = item % Kr;
    {
      Ct w = ex.cmult(rows[m][d], pick);
      ex.rot_accumulate(w, window);
      if (s1 >= 2 * cp) {
        Ct y = ex.rot(w, -static_cast<long long>(cp));
        ex.sub(w, y);
        w = ex.cmult(w, first);
        ex.add(w, y);
      } else {  // s1 == cp: only column 0 is right; replicate it
        w = ex.cmult(w, e0);
        ex.rot_accumulate(w, spread);
      }
      T[m][d] = std::move(w);
    }
  });
  rows.clear();

  EncMatrix G = output(Layout::tiled_rows(A.layout.cols, B.layout.cols, A.layout.block));
  const std::vector<long long> fold = doubling(s0 / cp, static_cast<long long>(cp * s1));
  ex.parallel_for(nb, [&](size_t l) {
    Ct x;
    bool first_term = true;
    for (size_t m = 0; m < na; ++m) {
      const Ct& blk = B.blocks[m * nb + l];
      std::vector<Ct> R = ex.rot_many(blk, shifts);
      R.insert(R.begin(), blk);
      for (size_t d = 0; d < Kr; ++d) {
        Ct t = ex.mult(T[m][d], R[d]);
        if (first_term) {
          x = std::move(t);
          first_term = false;
        } else {
          ex.add(x, t);
        }
      }
    }
    ex.finish(x);
    ex.rot_accumulate(x, fold);
    Ct y = ex.rot(x, static_cast<long long>(K * s1));
    ex.mul_i(y);
    ex.sub(x, y);
    Ct cj = ex.conj(x);
    ex.add(x, cj);
    G.blocks[l] = std::move(x);
  });
  return G;
}

}  // namespace

EncMatrix diag_atb(Executor& ex, const EncMatrix& A, const EncMatrix& B, AtbVariant v) {
  const char* who = "diag_atb";
  expect(A, Packing::tiled_cols, who, "A");
  expect(B, Packing::blocks, who, "B");
  same_block(A, B, who);
  if (A.layout.rows != B.layout.rows) {
    throw std::invalid_argument(std::string(who) + ": A is " + shape(A.layout.rows, A.layout.cols) +
                                ", B is " + shape(B.layout.rows, B.layout.cols) +
                                ": A^T B needs equal row counts");
  }
  start(ex, A, B);
  const Options& opt = ex.options();
  const size_t s0 = A.layout.block.s0, s1 = A.layout.block.s1;
  const size_t na = A.layout.grid_rows(), nb = B.layout.grid_cols();
  const size_t cp = A.layout.period, K = cp / 2, Kr = sampled(ex, K);
  if (v == AtbVariant::automatic) v = choose_atb_variant(opt, A.level(), B.level(), cp);
  if (v == AtbVariant::fold) return diag_atb_fold(ex, A, B);
  const Layout out_layout = Layout::tiled_rows(A.layout.cols, B.layout.cols, A.layout.block);

  // Q[m][k](r, t) = A[r, t+k] + i A[r, t+k+K] (column indices mod c_pad): the k-th pair of
  // diagonals of A, in-row rotated, for PRot; plain rotations of A' for PRotUp.
  std::vector<std::vector<Ct>> Q(na, std::vector<Ct>(Kr));
  ex.parallel_for(na, [&](size_t m) {
    const Ct& am = A.blocks[m];
    if (v == AtbVariant::prot && opt.fused_prot) {
      // Q_k = PRot(A, k) + i PRot(A, k + K) from hoisted rotations of A: one mask level.
      std::vector<long long> st;
      const long long S1 = static_cast<long long>(s1);
      for (size_t k = 0; k < Kr; ++k) {
        for (size_t j : {k, k + K}) {
          if (j == 0) continue;
          st.push_back(static_cast<long long>(j));
          st.push_back(static_cast<long long>(j) - S1);
        }
      }
      std::vector<Ct> r = ex.rot_many(am, st);
      size_t idx = 0;
      for (size_t k = 0; k < Kr; ++k) {
        Ct re;
        if (k == 0) {
          re = am;
        } else {
          re = prot_combine(ex, r[idx], r[idx + 1], k, s1, 1.0, "re");
          idx += 2;
        }
        Ct im = prot_combine(ex, r[idx], r[idx + 1], k + K, s1, Complex(0, 1), "im");
        idx += 2;
        Q[m][k] = plus(ex, std::move(im), re);
      }
    } else {
      Ct ac = complexify_tiled(ex, am, K, s1);
      if (v == AtbVariant::prot) {
        if (opt.hoist && Kr > 2) {
          std::vector<long long> st;
          for (size_t k = 1; k < Kr; ++k) {
            st.push_back(static_cast<long long>(k));
            st.push_back(static_cast<long long>(k) - static_cast<long long>(s1));
          }
          std::vector<Ct> r = ex.rot_many(ac, st);
          for (size_t k = 1; k < Kr; ++k) {
            Q[m][k] = prot_combine(ex, r[2 * k - 2], r[2 * k - 1], k, s1, 1.0, "re");
          }
        } else {
          for (size_t k = 1; k < Kr; ++k) Q[m][k] = prot(ex, ac, k, s1);
        }
      } else {
        std::vector<long long> st;
        for (size_t k = 1; k < Kr; ++k) st.push_back(static_cast<long long>(k));
        std::vector<Ct> r = ex.rot_many(ac, st);
        for (size_t k = 1; k < Kr; ++k) Q[m][k] = std::move(r[k - 1]);
      }
      Q[m][0] = std::move(ac);
    }
  });
  // One multiplication level for every k (equal scales in the sums over k).
  size_t qlevel = Q[0][0].level;
  for (const auto& row : Q)
    for (const Ct& q : row) qlevel = std::min(qlevel, q.level);
  const size_t blevel = (v == AtbVariant::prot_up && Kr > 1) ? B.level() - 1 : B.level();
  if (v == AtbVariant::prot_up && Kr > 1 && B.level() == 0) {
    throw std::invalid_argument("diag_atb: B at level 0, PRotUp needs one level on B");
  }
  const size_t mult_level = std::min(qlevel, blevel);
  for (auto& row : Q) drop_all(ex, row, mult_level);

  // [t >= s1 - k]: the columns whose B entries come from the next row (PRotUp).
  auto up_mask = [&](size_t k) {
    std::ostringstream key;
    key << "up." << k;
    return Mask{key.str(), [=](size_t, size_t t) { return t >= s1 - k ? Complex(1) : Complex(0); }};
  };
  const std::vector<long long> col_sum = doubling(s0, static_cast<long long>(s1));
  // PRotUp improvement: D = Rot(B, s1) - B once per block (hetal.md 4.3, 9).
  const bool need_d = v == AtbVariant::prot_up && opt.precompute_rot_b && Kr > 1;
  auto make_d = [&](size_t l) {
    std::vector<Ct> D(na);
    if (!need_d) return D;
    for (size_t m = 0; m < na; ++m) {
      D[m] = ex.rot(B.blocks[m * nb + l], static_cast<long long>(s1));
      ex.sub(D[m], B.blocks[m * nb + l]);
    }
    return D;
  };
  // Output blocks are independent; with fewer blocks than threads the diagonals are split too.
  const size_t parts = nb >= ex.threads() ? 1 : std::min(ex.threads(), Kr);
  std::vector<std::vector<Ct>> d_all(parts > 1 ? nb : 0);
  for (size_t l = 0; l < d_all.size(); ++l) d_all[l] = make_d(l);
  std::vector<std::vector<Ct>> partial(nb, std::vector<Ct>(parts));
  ex.parallel_for(nb * parts, [&](size_t item) {
    const size_t l = item / parts, part = item % parts;
    const std::vector<Ct> D = parts > 1 ? d_all[l] : make_d(l);
    Ct acc;
    for (size_t k = part; k < Kr; k += parts) {
      Ct p;
      for (size_t m = 0; m < na; ++m) {
        Ct bt = B.blocks[m * nb + l];
        if (v == AtbVariant::prot_up && k > 0) {
          // B~ = B with its last k columns taken from the next row ("partial rotate up").
          if (opt.precompute_rot_b) {
            Ct h = ex.cmult(D[m], up_mask(k));
            ex.add(h, bt);
            bt = std::move(h);
          } else {
            Ct h = ex.cmult(bt, up_mask(k));
            Ct hr = ex.rot(h, static_cast<long long>(s1));
            ex.sub(hr, h);
            ex.add(hr, bt);
            bt = std::move(hr);
          }
        }
        if (bt.level > mult_level) ex.drop(bt, mult_level);
        Ct t = ex.mult(Q[m][k], bt);
        if (m == 0) {
          p = std::move(t);
        } else {
          ex.add(p, t);
        }
      }
      ex.finish(p);
      ex.rot_accumulate(p, col_sum);  // every row: G[t+k, t] + i G[t+k+K, t]
      std::ostringstream key;
      key << "atb.diag." << k << "." << cp;
      const Mask diag{key.str(), [=](size_t r, size_t t) {
                        if (same_residue(r, t + k, cp)) return Complex(0.5);
                        if (same_residue(r, t + k + K, cp)) return Complex(0, -0.5);
                        return Complex(0);
                      }};
      Ct d = ex.cmult_lazy(p, diag);
      if (k == part) {
        acc = std::move(d);
      } else {
        ex.add(acc, d);
      }
    }
    partial[l][part] = std::move(acc);
  });
  EncMatrix G = output(out_layout);
  ex.parallel_for(nb, [&](size_t l) {
    Ct g = std::move(partial[l][0]);
    for (size_t part = 1; part < parts; ++part) ex.add(g, partial[l][part]);
    ex.finish(g);
    Ct cj = ex.conj(g);
    ex.add(g, cj);
    G.blocks[l] = std::move(g);
  });
  return G;
}

// ----------------------------------------------------------------------------- baselines

EncMatrix colmajor_abt(Executor& ex, const EncMatrix& A, const EncMatrix& B) {
  const char* who = "colmajor_abt";
  expect(A, Packing::blocks, who, "A");
  expect(B, Packing::blocks, who, "B");
  same_block(A, B, who);
  if (A.layout.cols != B.layout.cols) {
    throw std::invalid_argument(std::string(who) + ": A B^T needs equal column counts (" +
                                A.layout.describe() + ", " + B.layout.describe() + ")");
  }
  const size_t s0 = A.layout.block.s0, s1 = A.layout.block.s1, c = B.layout.rows;
  if (c > s0 || c > s1) {
    throw std::invalid_argument(std::string(who) + ": " + std::to_string(c) +
                                " rows of B must fit one block row and one block column");
  }
  start(ex, A, B);
  const size_t na = A.layout.grid_rows(), nb = A.layout.grid_cols(), cr = sampled(ex, c);
  EncMatrix C = output(Layout::blocks(A.layout.rows, c, A.layout.block));
  const Mask e0{"cm.e0", [](size_t, size_t t) { return t == 0 ? Complex(1) : Complex(0); }};
  const auto fill_rows = doubling(s0, static_cast<long long>(s1)), row_sum = doubling(s1, 1);
  // One k: row k of B replicated to every row (mask, then a cyclic sum over rows), times A,
  // row sums, column 0 masked and shifted to column k. Blocks run in parallel; with fewer
  // column blocks than threads the k are split between threads instead.
  auto one_k = [&](size_t k, std::vector<Ct>& acc, bool first) {
    const Mask row_k{"cm.row." + std::to_string(k),
                     [=](size_t r, size_t) { return r == k ? Complex(1) : Complex(0); }};
    std::vector<Ct> bk(nb);
    ex.parallel_for(nb, [&](size_t l) {
      bk[l] = ex.cmult(B.blocks[l], row_k);
      ex.rot_accumulate(bk[l], fill_rows);
    });
    ex.parallel_for(na, [&](size_t m) {
      Ct p;
      for (size_t l = 0; l < nb; ++l) {
        Ct t = ex.mult(A.blocks[m * nb + l], bk[l]);
        if (l == 0) {
          p = std::move(t);
        } else {
          ex.add(p, t);
        }
      }
      ex.finish(p);
      ex.rot_accumulate(p, row_sum);  // C[r, k] in column 0
      p = ex.cmult(p, e0);
      if (k > 0) p = ex.rot(p, -static_cast<long long>(k));
      if (first) {
        acc[m] = std::move(p);
      } else {
        ex.add(acc[m], p);
      }
    });
  };
  const size_t parts = nb >= ex.threads() ? 1 : std::min(ex.threads(), cr);
  std::vector<std::vector<Ct>> partial(parts, std::vector<Ct>(na));
  ex.parallel_for(parts, [&](size_t part) {
    for (size_t k = part; k < cr; k += parts) one_k(k, partial[part], k == part);
  });
  for (size_t m = 0; m < na; ++m) {
    C.blocks[m] = std::move(partial[0][m]);
    for (size_t part = 1; part < parts; ++part) ex.add(C.blocks[m], partial[part][m]);
  }
  return C;
}

EncMatrix rowmajor_atb(Executor& ex, const EncMatrix& A, const EncMatrix& B) {
  const char* who = "rowmajor_atb";
  expect(A, Packing::blocks, who, "A");
  expect(B, Packing::blocks, who, "B");
  same_block(A, B, who);
  if (A.layout.rows != B.layout.rows) {
    throw std::invalid_argument(std::string(who) + ": A^T B needs equal row counts (" +
                                A.layout.describe() + ", " + B.layout.describe() + ")");
  }
  const size_t s0 = A.layout.block.s0, s1 = A.layout.block.s1, c = A.layout.cols;
  if (c > s0 || c > s1) {
    throw std::invalid_argument(std::string(who) + ": " + std::to_string(c) +
                                " columns of A must fit one block row and one block column");
  }
  start(ex, A, B);
  const size_t na = A.layout.grid_rows(), nb = B.layout.grid_cols(), cr = sampled(ex, c);
  EncMatrix G = output(Layout::blocks(c, B.layout.cols, A.layout.block));
  const auto col_sum = doubling(s0, static_cast<long long>(s1)), replicate = doubling(s1, -1);
  // One k: column k of A moved to column 0 and replicated across each row, times B, column
  // sums, row k masked. Blocks run in parallel, or the k when there are fewer blocks than
  // threads.
  auto one_k = [&](size_t k, std::vector<Ct>& acc, bool first) {
    const Mask col_k{"rm.col." + std::to_string(k),
                     [=](size_t, size_t t) { return t == k ? Complex(1) : Complex(0); }};
    const Mask row_k{"rm.row." + std::to_string(k),
                     [=](size_t r, size_t) { return r == k ? Complex(1) : Complex(0); }};
    std::vector<Ct> ak(na);
    ex.parallel_for(na, [&](size_t m) {
      ak[m] = ex.cmult(A.blocks[m], col_k);
      if (k > 0) ak[m] = ex.rot(ak[m], static_cast<long long>(k));
      ex.rot_accumulate(ak[m], replicate);
    });
    ex.parallel_for(nb, [&](size_t l) {
      Ct p;
      for (size_t m = 0; m < na; ++m) {
        Ct t = ex.mult(ak[m], B.blocks[m * nb + l]);
        if (m == 0) {
          p = std::move(t);
        } else {
          ex.add(p, t);
        }
      }
      ex.finish(p);
      ex.rot_accumulate(p, col_sum);  // G[k, t] in every row
      p = ex.cmult_lazy(p, row_k);
      if (first) {
        acc[l] = std::move(p);
      } else {
        ex.add(acc[l], p);
      }
    });
  };
  const size_t parts = nb >= ex.threads() ? 1 : std::min(ex.threads(), cr);
  std::vector<std::vector<Ct>> partial(parts, std::vector<Ct>(nb));
  ex.parallel_for(parts, [&](size_t part) {
    for (size_t k = part; k < cr; k += parts) one_k(k, partial[part], k == part);
  });
  for (size_t l = 0; l < nb; ++l) {
    G.blocks[l] = std::move(partial[0][l]);
    for (size_t part = 1; part < parts; ++part) ex.add(G.blocks[l], partial[part][l]);
    ex.finish(G.blocks[l]);
  }
  return G;
}

EncMatrix jin_abt(Executor& ex, const EncMatrix& A, const EncMatrix& B) {
  const char* who = "jin_abt";
  expect(A, Packing::columns, who, "A");
  expect(B, Packing::scalars, who, "B");
  if (A.layout.slots() != B.layout.slots())
    throw std::invalid_argument("jin_abt: slot counts differ");
  if (A.layout.cols != B.layout.cols) {
    throw std::invalid_argument(std::string(who) + ": A B^T needs equal column counts (" +
                                A.layout.describe() + ", " + B.layout.describe() + ")");
  }
  start(ex, A, B);
  const size_t b = A.layout.cols, c = B.layout.rows, cr = sampled(ex, c);
  EncMatrix C = output(Layout::columns(A.layout.rows, c, A.layout.slots()));
  ex.parallel_for(cr, [&](size_t j) {
    Ct p;
    for (size_t col = 0; col < b; ++col) {
      Ct t = ex.mult(A.blocks[col], B.blocks[j * b + col]);
      if (col == 0) {
        p = std::move(t);
      } else {
        ex.add(p, t);
      }
    }
    ex.finish(p);
    C.blocks[j] = std::move(p);
  });
  return C;
}

EncMatrix jin_atb(Executor& ex, const EncMatrix& A, const EncMatrix& B) {
  const char* who = "jin_atb";
  expect(A, Packing::columns, who, "A");
  expect(B, Packing::columns, who, "B");
  if (A.layout.slots() != B.layout.slots())
    throw std::invalid_argument("jin_atb: slot counts differ");
  if (A.layout.rows != B.layout.rows) {
    throw std::invalid_argument(std::string(who) + ": A^T B needs equal row counts (" +
                                A.layout.describe() + ", " + B.layout.describe() + ")");
  }
  start(ex, A, B);
  const size_t c = A.layout.cols, b = B.layout.cols, n = sampled(ex, b * c);
  EncMatrix G = output(Layout::scalars(c, b, A.layout.slots()));
  const auto all = doubling(A.layout.slots(), 1);
  ex.parallel_for(n, [&](size_t idx) {
    const size_t j = idx / b, col = idx % b;
    Ct p = ex.mult(A.blocks[j], B.blocks[col]);
    ex.finish(p);
    ex.rot_accumulate(p, all);  // G[j, col] in every slot
    G.blocks[idx] = std::move(p);
  });
  return G;
}

// ----------------------------------------------------------------------------- front end

const char* algorithm_name(Algorithm a) {
  switch (a) {
    case Algorithm::jin_abt:
      return "Jin et al. ABt";
    case Algorithm::colmajor_abt:
      return "ColMajor";
    case Algorithm::diag_abt:
      return "DiagABT";
    case Algorithm::jin_atb:
      return "Jin et al. AtB";
    case Algorithm::rowmajor_atb:
      return "RowMajor";
    case Algorithm::diag_atb_prot:
      return "DiagATB-PRot";
    case Algorithm::diag_atb_prot_up:
      return "DiagATB-PRotUp";
    case Algorithm::diag_atb_fold:
      return "DiagATB-Fold";
  }
  return "?";
}

bool is_abt(Algorithm a) {
  return a == Algorithm::jin_abt || a == Algorithm::colmajor_abt || a == Algorithm::diag_abt;
}

Problem Problem::with_training_block(std::size_t a, std::size_t b, std::size_t c,
                                     std::size_t slots) {
  return Problem{a, b, c, training_block_shape(a, c, slots)};
}

std::string Problem::str() const {
  std::ostringstream s;
  s << "(" << a << "," << b << "," << c << ") in " << block.s0 << "x" << block.s1 << " blocks";
  return s.str();
}

std::pair<std::pair<std::size_t, std::size_t>, std::pair<std::size_t, std::size_t>> input_shapes(
    Algorithm alg, const Problem& p) {
  if (is_abt(alg)) return {{p.a, p.b}, {p.c, p.b}};
  return {{p.a, p.c}, {p.a, p.b}};
}

std::pair<Layout, Layout> input_layouts(Algorithm alg, const Problem& p) {
  const BlockShape bs = p.block;
  const std::size_t S = bs.slots();
  switch (alg) {
    case Algorithm::jin_abt:
      return {Layout::columns(p.a, p.b, S), Layout::scalars(p.c, p.b, S)};
    case Algorithm::colmajor_abt:
      return {Layout::blocks(p.a, p.b, bs), Layout::blocks(p.c, p.b, bs)};
    case Algorithm::diag_abt:
      return {Layout::blocks(p.a, p.b, bs), Layout::tiled_rows(p.c, p.b, bs)};
    case Algorithm::jin_atb:
      return {Layout::columns(p.a, p.c, S), Layout::columns(p.a, p.b, S)};
    case Algorithm::rowmajor_atb:
      return {Layout::blocks(p.a, p.c, bs), Layout::blocks(p.a, p.b, bs)};
    case Algorithm::diag_atb_prot:
    case Algorithm::diag_atb_prot_up:
    case Algorithm::diag_atb_fold:
      return {Layout::tiled_cols(p.a, p.c, bs), Layout::blocks(p.a, p.b, bs)};
  }
  throw std::invalid_argument("input_layouts: unknown algorithm");
}

EncMatrix run(Executor& ex, Algorithm alg, const EncMatrix& a, const EncMatrix& b) {
  switch (alg) {
    case Algorithm::jin_abt:
      return jin_abt(ex, a, b);
    case Algorithm::colmajor_abt:
      return colmajor_abt(ex, a, b);
    case Algorithm::diag_abt:
      return diag_abt(ex, a, b);
    case Algorithm::jin_atb:
      return jin_atb(ex, a, b);
    case Algorithm::rowmajor_atb:
      return rowmajor_atb(ex, a, b);
    case Algorithm::diag_atb_prot:
      return diag_atb(ex, a, b, AtbVariant::prot);
    case Algorithm::diag_atb_prot_up:
      return diag_atb(ex, a, b, AtbVariant::prot_up);
    case Algorithm::diag_atb_fold:
      return diag_atb(ex, a, b, AtbVariant::fold);
  }
  throw std::invalid_argument("run: unknown algorithm");
}

Matrix reference(Algorithm alg, const Matrix& a, const Matrix& b) {
  return is_abt(alg) ? multiply_abt(a, b) : multiply_atb(a, b);
}

std::size_t outer_iterations(Algorithm alg, const Problem& p) {
  switch (alg) {
    case Algorithm::jin_abt:
    case Algorithm::colmajor_abt:
    case Algorithm::rowmajor_atb:
      return p.c;
    case Algorithm::jin_atb:
      return p.b * p.c;
    case Algorithm::diag_abt:
    case Algorithm::diag_atb_prot:
    case Algorithm::diag_atb_prot_up:
    case Algorithm::diag_atb_fold:
      return padded_classes(p.c) / 2;
  }
  return 1;
}

DryRun dry_run(Algorithm alg, const Problem& p, const Options& opt, std::size_t level_a,
               std::size_t level_b) {
  Executor ex(opt);
  const auto [la, lb] = input_layouts(alg, p);
  const EncMatrix out =
      run(ex, alg, EncMatrix::shadow(la, level_a), EncMatrix::shadow(lb, level_b));
  DryRun r;
  r.counts = ex.counts();
  r.rotation_steps.assign(ex.rotation_steps().begin(), ex.rotation_steps().end());
  r.conjugation = ex.uses_conjugation();
  r.output = out.layout;
  std::size_t lvl = SIZE_MAX;
  for (const Ct& c : out.blocks) {
    if (c.level < lvl) lvl = c.level;
  }
  r.output_level = lvl == SIZE_MAX ? 0 : lvl;
  return r;
}

std::vector<long long> rotation_steps(Algorithm alg, const Problem& p, const Options& opt,
                                      std::size_t level_a, std::size_t level_b) {
  return dry_run(alg, p, opt, level_a, level_b).rotation_steps;
}

}  // namespace hetal::matrix
