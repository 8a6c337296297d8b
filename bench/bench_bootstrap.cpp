// Bootstrapping at N = 2^16 (Preset::B16_H192, h = 192 user key, ephemeral h = 32 key):
// key generation time and sizes, memory of the whole setup, time per stage on 1 and 2 threads,
// precision over random complex slots in the unit disk and over real slots, levels left.
//
//   build-rel/bench/bench_bootstrap                       # full slots, 1 and 2 threads
//   build-rel/bench/bench_bootstrap --threads 2 --runs 3
//   build-rel/bench/bench_bootstrap --slots 1024          # sparse slots
//   build-rel/bench/bench_bootstrap --k 16 --degree 30    # EvalMod settings
//   build-rel/bench/bench_bootstrap --compact 1           # diagonals kept compact (memory)
//   build-rel/bench/bench_bootstrap --hoisting single,double   # both DFT variants, same run
//   build-rel/bench/bench_bootstrap --seeded-keys 0       # Galois keys with both halves resident
#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

#include "bench_util.h"
#include "hetal/circuits/bootstrapping/bootstrapper.h"
#include "hetal/ckks/encryptor.h"
#include "hetal/ckks/keygen.h"
#include "hetal/ckks/precision.h"

using namespace hetal;
using namespace hetal::ckks;
using bench::Clock;
using bench::seconds_since;

namespace {

/// Resident and peak resident memory of this process in GiB (/proc/self/status).
std::pair<double, double> memory_gib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  double rss = 0, hwm = 0;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) rss = std::atof(line.c_str() + 6) / (1 << 20);
    if (line.rfind("VmHWM:", 0) == 0) hwm = std::atof(line.c_str() + 6) / (1 << 20);
  }
  return {rss, hwm};
}

double unit(core::Prng& p) { return (p.next_u64() >> 11) * 0x1p-53; }

std::vector<Complex> unit_disk(core::Prng& p, std::size_t n) {
  std::vector<Complex> v(n);
  for (auto& x : v) x = std::polar(std::sqrt(unit(p)), 2 * std::numbers::pi * unit(p));
  return v;
}

std::vector<Complex> real_slots(core::Prng& p, std::size_t n) {
  std::vector<Complex> v(n);
  for (auto& x : v) x = 2 * unit(p) - 1;
  return v;
}

[[noreturn]] void usage(const char* msg) {
  std::fprintf(stderr,
               "bench_bootstrap: %s\nusage: bench_bootstrap [--threads 1,2] [--runs R] "
               "[--slots S] [--k K] [--degree D] [--compact 0|1] [--hoisting double,single] "
               "[--seeded-keys 0|1]\n",
               msg);
  std::exit(2);
}

std::size_t parse_size(const char* s, const char* what) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (!*s || *end) usage((std::string("bad value for ") + what).c_str());
  return static_cast<std::size_t>(v);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> threads = {1, 2};
  std::size_t runs = 2, slots = 0;
  circuits::BootstrapParameters bp;
  std::vector<bool> hoisting = {true};  // double hoisting per variant, run side by side
  bp.mod1.k = 12;
  bp.mod1.degree = 31;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) usage(("missing value after " + a).c_str());
    const char* v = argv[++i];
    if (a == "--threads") {
      threads.clear();
      std::string list = v;
      for (std::size_t pos = 0; pos <= list.size();) {
        const std::size_t comma = std::min(list.find(',', pos), list.size());
        threads.push_back(
            static_cast<int>(parse_size(list.substr(pos, comma - pos).c_str(), "--threads")));
        pos = comma + 1;
      }
    } else if (a == "--runs") {
      runs = parse_size(v, "--runs");
    } else if (a == "--slots") {
      slots = parse_size(v, "--slots");
    } else if (a == "--k") {
      bp.mod1.k = parse_size(v, "--k");
    } else if (a == "--compact") {
      bp.compact_diagonals = parse_size(v, "--compact") != 0;
    } else if (a == "--seeded-keys") {
      bp.seeded_keys = parse_size(v, "--seeded-keys") != 0;
    } else if (a == "--hoisting") {
      hoisting.clear();
      const std::string list = v;
      for (std::size_t pos = 0; pos <= list.size();) {
        const std::size_t comma = std::min(list.find(',', pos), list.size());
        const std::string w = list.substr(pos, comma - pos);
        if (w != "double" && w != "single") usage("--hoisting takes double and/or single");
        hoisting.push_back(w == "double");
        pos = comma + 1;
      }
    } else if (a == "--degree") {
      bp.mod1.degree = parse_size(v, "--degree");
    } else {
      usage(("unknown option " + a).c_str());
    }
  }
  bp.slots = slots;

  omp_set_num_threads(threads.back());
  const Context ctx(Parameters::preset(Preset::B16_H192));
  slots = slots ? slots : ctx.max_slots();
  std::printf(
      "Parameters: %s, N = 2^%d, log QP = %.0f, slots %zu, K = %zu, cosine degree %zu, "
      "%zu double angles, ephemeral h = %zu\n",
      ctx.params().name.c_str(), ctx.log_n(), ctx.params().log_qp(), slots, bp.mod1.k,
      bp.mod1.degree, bp.mod1.double_angle, bp.ephemeral_hamming_weight);
  const auto [rss0, hwm0] = memory_gib();
  (void)hwm0;

  Encoder enc(ctx);
  Evaluator ev(ctx);
  KeyGenerator kg(ctx);
  auto t0 = Clock::now();
  const SecretKey sk = kg.secret_key();
  const RelinKey rlk = kg.relin_key(sk);
  const double t_rlk = seconds_since(t0);
  t0 = Clock::now();
  std::vector<std::unique_ptr<circuits::Bootstrapper>> boots;
  for (bool dh : hoisting) {
    circuits::BootstrapParameters b = bp;
    b.double_hoisting = dh;
    boots.push_back(std::make_unique<circuits::Bootstrapper>(ctx, enc, ev, rlk, b));
  }
  const circuits::Bootstrapper& boot = *boots.front();
  const double t_setup = seconds_since(t0) / static_cast<double>(boots.size());
  t0 = Clock::now();
  const circuits::BootstrapKeys keys = boot.generate_keys(kg, sk);
  const double t_keys = seconds_since(t0);
  const auto [rss1, hwm1] = memory_gib();
  const std::size_t rlk_bytes = rlk.key.bytes();
  std::printf("\nSetup (%d threads)\n", threads.back());
  std::printf("  relinearization key: %.2f s, %.0f MB\n", t_rlk, rlk_bytes / 1e6);
  std::printf("  bootstrapping keys: %.2f s, %zu Galois keys, %.2f GB resident (%s)\n", t_keys,
              keys.galois.keys.size(), keys.bytes() / 1e9,
              bp.seeded_keys ? "seeded: b halves, a regenerated at each use" : "both halves");
  {
    std::map<std::size_t, std::pair<std::size_t, std::size_t>> by_level;  // nq -> count, bytes
    for (const auto& [g, k] : keys.galois.keys) {
      auto& e = by_level[k.nq];
      e.first += 1;
      e.second += k.bytes();
    }
    for (const auto& [nq, e] : by_level)
      std::printf("    %zu keys at level %zu: %.0f MB each\n", e.first, nq - 1,
                  e.second / 1e6 / e.first);
  }
  if (keys.dense_to_sparse) {
    const std::size_t b = keys.dense_to_sparse->bytes() + keys.sparse_to_dense->bytes();
    std::printf("  encapsulation keys: %.0f MB\n", b / 1e6);
  }
  std::printf("  precomputed diagonals%s: %.2f s, %.2f GB\n",
              bp.compact_diagonals ? " (compact)" : "", t_setup, boot.precomputed_bytes() / 1e9);
  std::printf(
      "  resident after setup: %.2f GiB (%.2f GiB more than the bare context; peak "
      "%.2f GiB)\n",
      rss1, rss1 - rss0, hwm1);
  std::printf("  levels: depth %zu, output level %zu (user levels above q0: %zu)\n", boot.depth(),
              boot.output_level(), boot.output_level());

  Encryptor encryptor(ctx, sk);
  Decryptor dec(ctx, sk);
  core::Prng prng(core::os_seed());
  for (int th : threads) {
    omp_set_num_threads(th);
    std::printf(
        "\n%d thread%s                raise   CtS      EvalMod  StC      total    "
        "mean/min bits\n",
        th, th > 1 ? "s" : " ");
    for (std::size_t r = 0; r <= runs; ++r) {
      // Run 0 is the first one on cold buffers (page faults of fresh allocations); runs 1.. are
      // the steady state of a training loop. Odd runs use real slots.
      const bool real = r % 2 == 0 && r > 0;
      const std::vector<Complex> z = real ? real_slots(prng, slots) : unit_disk(prng, slots);
      const Ciphertext in = encryptor.encrypt(enc.encode(z, 0, ctx.default_scale()));
      for (std::size_t b = 0; b < boots.size(); ++b) {
        const circuits::Bootstrapper& boot = *boots[b];
        double cs = 0;
        auto t = Clock::now();
        Ciphertext c = boot.raise(in, keys, cs);
        const double t_raise = seconds_since(t);
        t = Clock::now();
        c = boot.coeffs_to_slots(c, keys);
        const double t_cts = seconds_since(t);
        t = Clock::now();
        c = boot.eval_mod(c, keys, cs);
        const double t_mod = seconds_since(t);
        t = Clock::now();
        c = boot.slots_to_coeffs(c, keys, cs);
        const double t_stc = seconds_since(t);
        const Precision p = precision(enc.decode(dec.decrypt(c)), z);
        std::printf(
            "  %s %zu (%s)%s   %6.2f  %7.2f  %7.2f  %7.2f  %7.2f   %.1f / %.1f  (level %zu)\n",
            r == 0 ? "cold" : "run ", r, real ? "real slots " : "unit disk  ",
            boots.size() > 1 ? (hoisting[b] ? " double" : " single") : "", t_raise, t_cts, t_mod,
            t_stc, t_raise + t_cts + t_mod + t_stc, p.mean, p.worst, c.level());
      }
    }
  }
  const auto [rss2, hwm2] = memory_gib();
  std::printf("\nPeak resident memory of the process: %.2f GiB (now %.2f)\n", hwm2, rss2);
  return 0;
}
