// Engine micro-benchmarks at N = 2^16 on the production chain B16-H192 (ckks.md section 4.3):
// at the user top level (10 Q primes + 5 P) and at the full chain (25 Q primes + 5 P).
// Each benchmark takes the thread count as its argument.
//   ./build/bench/bench_ckks --benchmark_filter=... --benchmark_repetitions=3
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <memory>
#include <numbers>

#include "hetal/ckks/context.h"
#include "hetal/ckks/encoder.h"
#include "hetal/ckks/encryptor.h"
#include "hetal/ckks/evaluator.h"
#include "hetal/ckks/keygen.h"

using namespace hetal;
using namespace hetal::ckks;

namespace {

std::size_t poly_bytes(const ring::RnsPoly& p) { return p.size() * sizeof(std::uint64_t); }
std::size_t key_bytes(const rlwe::SwitchingKey& k) {
  std::size_t s = 0;
  for (const auto& b : k.b) s += poly_bytes(b);
  return 2 * s;  // b and a in memory (a is a seed on the wire)
}

struct Env {
  Context ctx{Parameters::preset(Preset::B16_H192)};
  Encoder enc{ctx};
  KeyGenerator kg{ctx, core::Seed{1}};
  SecretKey sk = kg.secret_key();
  PublicKey pk = kg.public_key(sk);
  std::size_t user = ctx.user_top_level(), full = ctx.max_level();
  RelinKey rlk_user = kg.relin_key(sk, user);
  RelinKey rlk_full = kg.relin_key(sk, full);
  std::vector<long long> steps = {1, 2, 3, 4, 5, 6, 7, 8};
  GaloisKeys gk_user = kg.galois_keys(sk, steps, true, user);
  GaloisKeys gk_full = kg.galois_keys(sk, std::vector<long long>{1}, true, full);
  Encryptor encryptor{ctx, pk, core::Seed{2}};
  Decryptor decryptor{ctx, sk};
  Evaluator ev{ctx};
  std::vector<Complex> values;
  Env() {
    core::Prng p(core::Seed{3});
    values.resize(ctx.max_slots());
    for (auto& v : values) {
      v = std::polar(std::sqrt((p.next_u64() >> 11) * 0x1p-53),
                     2 * std::numbers::pi * ((p.next_u64() >> 11) * 0x1p-53));
    }
  }
  Ciphertext fresh(std::size_t level) {
    return encryptor.encrypt(enc.encode(values, level, ctx.default_scale()));
  }
  const RelinKey& rlk(std::size_t level) { return level == full ? rlk_full : rlk_user; }
  const GaloisKeys& gk(std::size_t level) { return level == full ? gk_full : gk_user; }
};

Env& env() {
  static Env e;
  return e;
}

/// Thread count from argument 0, level from argument 1 (0: user top, 1: full chain).
std::size_t setup(benchmark::State& st) {
  omp_set_num_threads(static_cast<int>(st.range(0)));
  st.counters["threads"] = static_cast<double>(st.range(0));
  const std::size_t level = st.range(1) ? env().full : env().user;
  st.counters["Q_primes"] = static_cast<double>(level + 1);
  return level;
}

/// One untimed warm-up call (fills the buffer cache, builds Galois maps), then the timed loop.
template <class F>
void run(benchmark::State& st, F&& op) {
  op();
  for (auto _ : st) op();
}

/// Repeated in-place NTTs of one limb: lazy outputs are valid inputs again.
template <class F>
void run_ntt(benchmark::State& st, const ring::NttTables& t, F&& op) {
  setup(st);
  core::WordVector a(env().ctx.n());
  core::Prng p(core::Seed{4});
  for (auto& x : a) x = p.uniform(t.q());
  run(st, [&] {
    op(t, a.data());
    benchmark::DoNotOptimize(a.data());
  });
  st.counters["prime_bits"] = t.modulus().bits;
}

const ring::NttTables& user_prime() { return env().ctx.rns().q_ntt(1); }     // 40 bits
const ring::NttTables& special_prime() { return env().ctx.rns().p_ntt(0); }  // 61 bits

void BM_NttForward(benchmark::State& st) {  // including the final reduction to [0, 2q)
  run_ntt(st, user_prime(), [](const ring::NttTables& t, core::u64* a) {
    t.forward_lazy(a);
    for (std::size_t k = 0; k < t.n(); ++k) a[k] = a[k] >= 2 * t.q() ? a[k] - 2 * t.q() : a[k];
  });
}
void BM_NttForwardOnly(benchmark::State& st) {
  run_ntt(st, user_prime(), [](const ring::NttTables& t, core::u64* a) { t.forward_lazy(a); });
}
void BM_NttInverse(benchmark::State& st) {
  run_ntt(st, user_prime(), [](const ring::NttTables& t, core::u64* a) { t.inverse_lazy(a); });
}
void BM_Ntt61Forward(benchmark::State& st) {
  run_ntt(st, special_prime(), [](const ring::NttTables& t, core::u64* a) { t.forward_lazy(a); });
}

// One limb of a seeded key's uniform half, as key switching regenerates it (60-bit prime).
void BM_UniformFill(benchmark::State& st) {
  core::WordVector a(std::size_t{1} << 16);
  core::Prng p(core::Seed{3});
  const core::u64 q = (core::u64{1} << 60) - 93;
  for (auto _ : st) {
    p.uniform_fill(q, a.data(), a.size());
    benchmark::DoNotOptimize(a.data());
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * a.size()));
}

void BM_Encode(benchmark::State& st) {
  const std::size_t level = setup(st);
  Plaintext pt;
  run(st, [&] { env().enc.encode(env().values, level, env().ctx.default_scale(), pt); });
}
void BM_Decode(benchmark::State& st) {
  const std::size_t level = setup(st);
  const Plaintext pt = env().enc.encode(env().values, level, env().ctx.default_scale());
  run(st, [&] { benchmark::DoNotOptimize(env().enc.decode(pt)); });
}
void BM_EncryptPublic(benchmark::State& st) {
  const std::size_t level = setup(st);
  const Plaintext pt = env().enc.encode(env().values, level, env().ctx.default_scale());
  run(st, [&] { benchmark::DoNotOptimize(env().encryptor.encrypt(pt)); });
}
void BM_DecryptDecode(benchmark::State& st) {
  const Ciphertext ct = env().fresh(setup(st));
  run(st, [&] { benchmark::DoNotOptimize(env().enc.decode(env().decryptor.decrypt(ct))); });
}
void BM_Add(benchmark::State& st) {
  const std::size_t level = setup(st);
  Ciphertext a = env().fresh(level);
  const Ciphertext b = env().fresh(level);
  run(st, [&] { env().ev.add_inplace(a, b); });
}
void BM_MultiplyRelin(benchmark::State& st) {
  const std::size_t level = setup(st);
  const Ciphertext a = env().fresh(level), b = env().fresh(level);
  run(st, [&] { benchmark::DoNotOptimize(env().ev.multiply_relin(a, b, env().rlk(level))); });
}
void BM_Rescale(benchmark::State& st) {
  const std::size_t level = setup(st);
  const Ciphertext a =
      env().ev.multiply_relin(env().fresh(level), env().fresh(level), env().rlk(level));
  run(st, [&] { benchmark::DoNotOptimize(env().ev.rescale(a)); });
}
void BM_Rotate(benchmark::State& st) {
  const std::size_t level = setup(st);
  const Ciphertext a = env().fresh(level);
  run(st, [&] { benchmark::DoNotOptimize(env().ev.rotate(a, 1, env().gk(level))); });
}
void BM_Conjugate(benchmark::State& st) {
  const std::size_t level = setup(st);
  const Ciphertext a = env().fresh(level);
  run(st, [&] { benchmark::DoNotOptimize(env().ev.conjugate(a, env().gk(level))); });
}
// Eight rotations of one ciphertext with a single decomposition (user top level).
void BM_RotateHoisted8(benchmark::State& st) {
  setup(st);
  const Ciphertext a = env().fresh(env().user);
  run(st,
      [&] { benchmark::DoNotOptimize(env().ev.rotate_hoisted(a, env().steps, env().gk_user)); });
  st.counters["rotations"] = 8;
}
void BM_Hoist(benchmark::State& st) {
  const Ciphertext a = env().fresh(setup(st));
  run(st, [&] { benchmark::DoNotOptimize(env().ev.hoist(a)); });
}
// Each rotation after the first of a hoisted batch: the decomposition is reused.
void BM_HoistedRotationAfterFirst(benchmark::State& st) {
  const std::size_t level = setup(st);
  const Ciphertext a = env().fresh(level);
  const auto dec = env().ev.hoist(a);
  run(st, [&] { benchmark::DoNotOptimize(env().ev.rotate_hoisted(a, dec, 1, env().gk(level))); });
}
void BM_KeySizes(benchmark::State& st) {
  for (auto _ : st) benchmark::DoNotOptimize(env().ctx.n());
  auto mb = [](std::size_t b) { return static_cast<double>(b) / (1 << 20); };
  st.counters["relin_user_MiB"] = mb(key_bytes(env().rlk_user.key));
  st.counters["relin_full_MiB"] = mb(key_bytes(env().rlk_full.key));
  st.counters["galois1_user_MiB"] = mb(key_bytes(env().gk_user.keys.begin()->second));
  st.counters["public_MiB"] = mb(2 * poly_bytes(env().pk.b));
  st.counters["ct_user_MiB"] = mb(2 * poly_bytes(env().fresh(env().user).parts[0]));
  st.counters["log_qp"] = env().ctx.params().log_qp();
}

void ThreadsAndLevels(benchmark::internal::Benchmark* b) {
  for (int level : {0, 1})
    for (int t : {1, 2}) b->Args({t, level});
  b->Unit(benchmark::kMillisecond);
}
void Threads(benchmark::internal::Benchmark* b) {
  for (int t : {1, 2}) b->Args({t, 0});
  b->Unit(benchmark::kMillisecond);
}
void OneThread(benchmark::internal::Benchmark* b) {
  b->Args({1, 0});
  b->Unit(benchmark::kMicrosecond);
}

}  // namespace

BENCHMARK(BM_NttForward)->Apply(OneThread);
BENCHMARK(BM_NttForwardOnly)->Apply(OneThread);
BENCHMARK(BM_NttInverse)->Apply(OneThread);
BENCHMARK(BM_Ntt61Forward)->Apply(OneThread);
BENCHMARK(BM_UniformFill);
BENCHMARK(BM_Encode)->Apply(ThreadsAndLevels);
BENCHMARK(BM_Decode)->Apply(ThreadsAndLevels);
BENCHMARK(BM_EncryptPublic)->Apply(ThreadsAndLevels);
BENCHMARK(BM_DecryptDecode)->Apply(ThreadsAndLevels);
BENCHMARK(BM_Add)->Apply(ThreadsAndLevels);
BENCHMARK(BM_MultiplyRelin)->Apply(ThreadsAndLevels);
BENCHMARK(BM_Rescale)->Apply(ThreadsAndLevels);
BENCHMARK(BM_Rotate)->Apply(ThreadsAndLevels);
BENCHMARK(BM_Hoist)->Apply(ThreadsAndLevels);
BENCHMARK(BM_HoistedRotationAfterFirst)->Apply(ThreadsAndLevels);
BENCHMARK(BM_RotateHoisted8)->Apply(Threads);
BENCHMARK(BM_Conjugate)->Apply(ThreadsAndLevels);
BENCHMARK(BM_KeySizes)->Iterations(1);

int main(int argc, char** argv) {
  // Blocking waits: spinning OpenMP workers hurt badly on a loaded 2-core machine (ckks.md 4.8).
  setenv("OMP_WAIT_POLICY", "passive", 0);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
