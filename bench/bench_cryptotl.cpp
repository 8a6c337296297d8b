// CryptoTL's encrypted lower network (issue 15): latency of one full ciphertext of samples and
// throughput over many, at the 128-bit C14 parameters, for GloVe's d = 100 and Spambase's d = 57.
//   bench_cryptotl [repeats=3] [ciphertexts=16]
//   bench_cryptotl [repeats=3] 0 b16   the network as HETAL's input at B16-H192 (N = 2^16,
//                                      compact diagonals, bias column, a batch of 256 samples)
// Weights are random (the cost does not depend on them); every figure is min-max over repeats.
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.h"
#include "hetal/ckks/encryptor.h"
#include "hetal/ckks/keygen.h"
#include "hetal/ckks/serialization.h"
#include "hetal/cryptotl/encrypted_network.h"

using namespace hetal;
using bench::Clock;
using bench::seconds_since;

namespace {

nn::LowerNetwork random_network(std::size_t d) {
  std::mt19937_64 g(d);
  std::uniform_real_distribution<double> u(-0.1, 0.1);
  nn::LowerNetwork n;
  n.dim = d;
  auto fill = [&](std::vector<double>& v, std::size_t k) {
    v.resize(k);
    for (auto& x : v) x = u(g);
  };
  fill(n.conv_w, nn::kConvKernel);
  fill(n.w1, d * d);
  fill(n.b1, d);
  fill(n.w2, (d - 2) * (d - 2));
  fill(n.b2, d - 2);
  return n;
}

struct Range {
  double lo = 1e300, hi = 0;
  void add(double v) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
};

}  // namespace

namespace {
// The mode that never decrypts: what the HETAL server adds to each batch it reads.
int bench_b16(int repeats) {
  const int threads = omp_get_max_threads();
  const ckks::Context ctx(ckks::Parameters::preset(ckks::Preset::B16_H192));
  const ckks::Encoder enc(ctx);
  const ckks::Evaluator ev(ctx);
  const std::size_t d = 100, level = ctx.user_top_level();
  const auto net = random_network(d);
  auto t0 = Clock::now();
  const cryptotl::EncryptedLowerNetwork enc_net(
      ctx, enc, net, level, cryptotl::NetworkOptions{.compact = true, .bias_column = true});
  const double build = seconds_since(t0);
  const auto& pk = enc_net.packing();
  ckks::KeyGenerator kg(ctx);
  const auto sk = kg.secret_key();
  const auto rlk = kg.relin_key(sk);
  t0 = Clock::now();
  const auto gk = kg.galois_keys(sk, cryptotl::required_rotations(ctx, enc, d), false, level);
  const double keygen = seconds_since(t0);
  ckks::Encryptor encryptor(ctx, sk);
  std::vector<float> x(pk.per_ciphertext * d);
  std::mt19937 g(1);
  std::uniform_real_distribution<float> u(-1, 1);
  for (auto& v : x) v = u(g);
  const auto ct = encryptor.encrypt(
      enc.encode(std::span<const double>(pk.pack(x, 0, pk.per_ciphertext, ctx.max_slots())), level,
                 ctx.default_scale()));
  Range full, partial;
  for (int r = 0; r < repeats; ++r) {
    t0 = Clock::now();
    (void)enc_net.forward(ev, ct, rlk, gk, pk.per_ciphertext);
    full.add(seconds_since(t0));
    t0 = Clock::now();  // a short batch: its masked transform is built on first use
    (void)enc_net.forward(ev, ct, rlk, gk, pk.per_ciphertext - 1 - static_cast<std::size_t>(r));
    partial.add(seconds_since(t0));
  }
  std::printf(
      "B16-H192: N = 2^16, d = %zu, %zu samples per batch ciphertext, %d threads, %d repeats\n", d,
      pk.per_ciphertext, threads, repeats);
  std::printf(
      "| network built (s) | %zu Galois keys (s) | forward, full batch (s) | forward, short batch "
      "incl. its transform (s) |\n",
      gk.keys.size());
  std::printf("|---|---|---|---|\n| %.2f | %.2f | %.2f–%.2f | %.2f–%.2f |\n", build, keygen,
              full.lo, full.hi, partial.lo, partial.hi);
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::atoi(argv[1]) : 3;
  const std::size_t cts = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 16;
  if (argc > 3 && std::string(argv[3]) == "b16") return bench_b16(repeats);
  const int threads = omp_get_max_threads();
  const ckks::Context ctx(cryptotl::default_parameters());
  const ckks::Encoder enc(ctx);
  const ckks::Evaluator ev(ctx);
  std::printf("C14: N = 2^14, %zu slots, %d threads, %d repeats, %zu ciphertexts for throughput\n",
              ctx.max_slots(), threads, repeats, cts);
  std::printf(
      "| d | samples / ct | Galois keys (count, MB) | keygen (s) | encrypt 1 ct (ms) | "
      "forward 1 ct, 1 thread (s) | forward 1 ct, %d threads (s) | %zu cts, %d threads (s) | "
      "samples/s | decrypt 1 ct (ms) | input ct (KB, seeded) | output ct (KB) |\n",
      threads, cts, threads);
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (std::size_t d : {100, 57}) {
    const auto net = random_network(d);
    const std::size_t level = ctx.user_top_level();
    const cryptotl::EncryptedLowerNetwork enc_net(ctx, enc, net, level);
    const auto& pk = enc_net.packing();
    Range keygen, encrypt, one1, oneN, many, decrypt;
    double gk_mb = 0, in_kb = 0, out_kb = 0;
    std::size_t keys = 0;
    for (int r = 0; r < repeats; ++r) {
      auto t0 = Clock::now();
      ckks::KeyGenerator kg(ctx);
      const auto sk = kg.secret_key();
      const auto rlk = kg.relin_key(sk);
      const auto gk = kg.galois_keys(sk, cryptotl::required_rotations(ctx, enc, d), false);
      keygen.add(seconds_since(t0));
      keys = gk.keys.size();
      std::ostringstream gks;
      ckks::save(ctx, gk, gks);
      gk_mb = gks.str().size() / 1e6;
      ckks::Encryptor encryptor(ctx, sk);
      const ckks::Decryptor dec(ctx, sk);
      std::vector<float> x(pk.per_ciphertext * d);
      std::mt19937 g(r);
      std::uniform_real_distribution<float> u(-1, 1);
      for (auto& v : x) v = u(g);
      const auto slots = pk.pack(x, 0, pk.per_ciphertext, ctx.max_slots());
      t0 = Clock::now();
      const auto seeded = encryptor.encrypt_seeded(
          enc.encode(std::span<const double>(slots), level, ctx.default_scale()));
      encrypt.add(seconds_since(t0) * 1e3);
      std::ostringstream ins;
      ckks::save(ctx, seeded, ins);
      in_kb = ins.str().size() / 1e3;
      const auto ct = ckks::expand(ctx, seeded);
      omp_set_num_threads(1);
      t0 = Clock::now();
      (void)enc_net.forward(ev, ct, rlk, gk);
      one1.add(seconds_since(t0));
      omp_set_num_threads(threads);
      t0 = Clock::now();
      const auto y = enc_net.forward(ev, ct, rlk, gk);
      oneN.add(seconds_since(t0));
      const std::vector<ckks::Ciphertext> batch(cts, ct);
      t0 = Clock::now();
      (void)enc_net.forward_all(ev, batch, rlk, gk);
      many.add(seconds_since(t0));
      std::ostringstream outs;
      ckks::save(ctx, y, outs);
      out_kb = outs.str().size() / 1e3;
      t0 = Clock::now();
      (void)enc.decode_real(dec.decrypt(y));
      decrypt.add(seconds_since(t0) * 1e3);
    }
    const double per = static_cast<double>(cts * pk.per_ciphertext);
    std::printf(
        "| %zu | %zu | %zu, %.0f | %.2f–%.2f | %.1f–%.1f | %.3f–%.3f | %.3f–%.3f | %.2f–%.2f | "
        "%.0f–%.0f | %.1f–%.1f | %.0f | %.0f |\n",
        d, pk.per_ciphertext, keys, gk_mb, keygen.lo, keygen.hi, encrypt.lo, encrypt.hi, one1.lo,
        one1.hi, oneN.lo, oneN.hi, many.lo, many.hi, per / many.hi, per / many.lo, decrypt.lo,
        decrypt.hi, in_kb, out_kb);
  }
  return 0;
}
