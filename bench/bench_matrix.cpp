// HETAL's Table 1 (hetal.md 4.6) on our engine: every encrypted matrix product at N = 2^16
// (Preset::B16_H192), inputs at the user top level 9, 1 and 2 threads, with the operation
// counts of Table 7 (hetal.md 4.4) beside the times.
//
//   build-mat/bench/bench_matrix                 # all six shapes (~15-20 min on 2 cores)
//   build-mat/bench/bench_matrix --quick         # the two small shapes
//   build-mat/bench/bench_matrix --shapes 512x769x4,mnist --threads 1
//   build-mat/bench/bench_matrix --plan          # calibrate, print the schedule, run nothing
//
// Runs predicted (from the dry-run op counts and measured unit costs) to take longer than
// --max-run seconds are sampled: a prefix of the outer loop (Options::sample_outer), or for
// Jin et al., whose packing needs one ciphertext per column or per entry (too much memory to
// hold at b*c = 12304), the same algorithm on a reduced shape. The time is scaled by the ratio
// of the modelled costs of the full and the sampled run, and marked as extrapolated (HETAL's
// own Jin et al. figures were extrapolated too, hetal.md 4.6).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <numbers>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.h"
#include "hetal/ckks/context.h"
#include "hetal/ckks/encoder.h"
#include "hetal/ckks/encryptor.h"
#include "hetal/ckks/evaluator.h"
#include "hetal/ckks/keygen.h"
#include "hetal/matrix/matmul.h"
#include "hetal/ring/automorphism.h"

using namespace hetal;
using namespace hetal::matrix;
using bench::Clock;
using bench::seconds_since;

namespace {

struct Shape {
  std::string name;
  std::size_t a, b, c;
};
const Shape kShapes[] = {{"128x128x4", 128, 128, 4},     {"256x256x8", 256, 256, 8},
                         {"512x769x4", 512, 769, 4},     {"1024x769x8", 1024, 769, 8},
                         {"2048x769x16", 2048, 769, 16}, {"mnist", 1024, 769, 16}};

// HETAL Table 1 (A40 GPU, seconds) and Table 7 (CMult/Mult/Rot), hetal.md 4.4 and 4.6.
struct PaperRow {
  double jin_abt, colmajor, diag_abt, jin_atb, rowmajor, diag_atb;
};
const std::map<std::string, PaperRow> kPaperTimes = {
    {"128x128x4", {0.8192, 0.1104, 0.0601, 10.0352, 0.1171, 0.0415}},
    {"256x256x8", {3.2768, 0.3203, 0.1211, 40.1408, 0.3167, 0.1239}},
    {"512x769x4", {4.9216, 0.7609, 0.1223, 60.2896, 0.7176, 0.3343}},
    {"1024x769x8", {9.8432, 3.0428, 0.3710, 120.5792, 2.8546, 1.2558}},
    {"2048x769x16", {19.6864, 12.6251, 1.2376, 241.1584, 11.8220, 4.9970}}};
struct Cell {
  std::size_t cmult, mult, rot;
};
const std::map<std::string, std::map<Algorithm, Cell>> kTable7 = {
    {"128x128x4",
     {{Algorithm::jin_abt, {0, 512, 0}},
      {Algorithm::colmajor_abt, {8, 4, 63}},
      {Algorithm::diag_abt, {4, 2, 34}},
      {Algorithm::jin_atb, {0, 512, 7680}},
      {Algorithm::rowmajor_atb, {8, 4, 63}},
      {Algorithm::diag_atb_prot, {4, 2, 18}},
      {Algorithm::diag_atb_prot_up, {4, 2, 18}}}},
    {"256x256x8",
     {{Algorithm::jin_abt, {0, 2048, 0}},
      {Algorithm::colmajor_abt, {24, 16, 191}},
      {Algorithm::diag_abt, {8, 8, 64}},
      {Algorithm::jin_atb, {0, 2048, 30720}},
      {Algorithm::rowmajor_atb, {24, 16, 191}},
      {Algorithm::diag_atb_prot, {12, 8, 72}},
      {Algorithm::diag_atb_prot_up, {15, 8, 75}}}},
    {"512x769x4",
     {{Algorithm::jin_abt, {0, 3076, 0}},
      {Algorithm::colmajor_abt, {56, 52, 495}},
      {Algorithm::diag_abt, {4, 26, 50}},
      {Algorithm::jin_atb, {0, 3076, 46140}},
      {Algorithm::rowmajor_atb, {56, 52, 495}},
      {Algorithm::diag_atb_prot, {28, 26, 238}},
      {Algorithm::diag_atb_prot_up, {40, 26, 250}}}},
    {"1024x769x8",
     {{Algorithm::jin_abt, {0, 6152, 0}},
      {Algorithm::colmajor_abt, {208, 200, 2047}},
      {Algorithm::diag_abt, {8, 100, 140}},
      {Algorithm::jin_atb, {0, 6152, 92280}},
      {Algorithm::rowmajor_atb, {208, 200, 2047}},
      {Algorithm::diag_atb_prot, {104, 100, 1008}},
      {Algorithm::diag_atb_prot_up, {176, 100, 1080}}}},
    {"2048x769x16",
     {{Algorithm::jin_abt, {0, 12304, 0}},
      {Algorithm::colmajor_abt, {800, 784, 8703}},
      {Algorithm::diag_abt, {16, 392, 456}},
      {Algorithm::jin_atb, {0, 12304, 184560}},
      {Algorithm::rowmajor_atb, {800, 784, 8703}},
      {Algorithm::diag_atb_prot, {400, 392, 4328}},
      {Algorithm::diag_atb_prot_up, {736, 392, 4664}}}},
    {"mnist",
     {{Algorithm::diag_abt, {16, 200, 280}},
      {Algorithm::diag_atb_prot, {208, 200, 2016}},
      {Algorithm::diag_atb_prot_up, {376, 200, 2184}}}}};

// What is timed: an algorithm with an option set.
struct Config {
  std::string id, label;
  Algorithm alg;
  bool paper;  // Options::paper() (HETAL as published) or the defaults (with improvements)
};
const Config kConfigs[] = {
    {"jin_abt", "Jin et al. ABt", Algorithm::jin_abt, false},
    // As HETAL ran it (HEaaN's mult relinearizes and rescales every product).
    {"jin_abt_paper", "Jin et al. ABt (paper)", Algorithm::jin_abt, true},
    {"colmajor", "ColMajor", Algorithm::colmajor_abt, false},
    {"abt_paper", "DiagABT (paper)", Algorithm::diag_abt, true},
    {"abt", "DiagABT (ours)", Algorithm::diag_abt, false},
    {"jin_atb", "Jin et al. AtB", Algorithm::jin_atb, false},
    {"rowmajor", "RowMajor", Algorithm::rowmajor_atb, false},
    {"prot_paper", "DiagATB-PRot (paper)", Algorithm::diag_atb_prot, true},
    {"protup_paper", "DiagATB-PRotUp (paper)", Algorithm::diag_atb_prot_up, true},
    {"prot", "DiagATB-PRot (ours)", Algorithm::diag_atb_prot, false},
    {"protup", "DiagATB-PRotUp (ours)", Algorithm::diag_atb_prot_up, false},
    {"fold", "DiagATB-Fold (ours)", Algorithm::diag_atb_fold, false},
};

Options options_of(const Config& c) { return c.paper ? Options::paper() : Options{}; }

// Measured costs of single operations at the input level, seconds.
struct UnitCosts {
  double rot = 0, hoisted = 0, tensor = 0, relin = 0, rescale = 0, cmult = 0, add = 0;
  double model(const OpCounts& c) const {
    // relin and conj are key switches like a rotation; hoisted rotations skip the
    // decomposition; every product and mask product is followed by its rescale (counted).
    return static_cast<double>(c.rot - c.hoisted + c.conj) * rot +
           static_cast<double>(c.hoisted) * hoisted + static_cast<double>(c.mult) * (tensor + add) +
           static_cast<double>(c.relin) * relin + static_cast<double>(c.rescale) * rescale +
           static_cast<double>(c.cmult) * (cmult + add);
  }
};

struct Bench {
  ckks::Context ctx{ckks::Parameters::preset(ckks::Preset::B16_H192)};
  ckks::Encoder enc{ctx};
  ckks::KeyGenerator kg{ctx, core::Seed{7}};
  ckks::SecretKey sk = kg.secret_key();
  ckks::PublicKey pk = kg.public_key(sk);
  std::size_t level = ctx.user_top_level();
  ckks::RelinKey rlk = kg.relin_key(sk, level);
  ckks::Encryptor encryptor{ctx, pk, core::Seed{8}};
  ckks::Decryptor dec{ctx, sk};
  ckks::Evaluator ev{ctx};
  ckks::GaloisKeys gk;
  std::set<long long> have;
  bool have_conj = false;
  double keygen_s = 0;

  // Galois keys for exactly `steps` (and conjugation); keys no longer wanted are dropped to
  // bound memory (each key is ~30 MB at level 9).
  void keys_for(const std::set<long long>& steps, bool conj) {
    const auto t0 = Clock::now();
    ckks::GaloisKeys next;
    std::vector<long long> missing;
    for (long long s : steps) {
      if (!have.count(s)) missing.push_back(s);
    }
    ckks::GaloisKeys fresh = kg.galois_keys(sk, missing, conj && !have_conj, level);
    std::set<std::uint64_t> wanted;
    for (long long s : steps) wanted.insert(ring::galois_element_for_rotation(ctx.log_n(), s));
    if (conj) wanted.insert(ring::galois_element_conjugate(ctx.log_n()));
    for (auto& [g, k] : gk.keys)
      if (wanted.count(g)) next.keys.emplace(g, std::move(k));
    for (auto& [g, k] : fresh.keys) next.keys.emplace(g, std::move(k));
    gk = std::move(next);
    have = steps;
    have_conj = conj;
    keygen_s += seconds_since(t0);
  }

  ckks::Ciphertext random_ct(core::Prng& p) {
    std::vector<double> v(ctx.max_slots());
    for (double& x : v) x = 2.0 * ((p.next_u64() >> 11) * 0x1p-53) - 1.0;
    return encryptor.encrypt(enc.encode(v, level, ctx.default_scale()));
  }

  UnitCosts calibrate(int threads) {
    omp_set_num_threads(threads);
    core::Prng p(core::Seed{9});
    const long long st[] = {1, 2, 3, 4};
    const ckks::GaloisKeys g = kg.galois_keys(sk, st, false, level);
    ckks::Ciphertext a = random_ct(p), b = random_ct(p);
    UnitCosts u;
    auto time = [](int reps, auto&& f) {
      f();  // warm-up
      const auto t0 = Clock::now();
      for (int i = 0; i < reps; ++i) f();
      return seconds_since(t0) / reps;
    };
    u.rot = time(6, [&] { (void)ev.rotate(a, 1, g); });
    const double four = time(3, [&] { (void)ev.rotate_hoisted(a, st, g); });
    u.hoisted = (four - u.rot) / 3;
    u.tensor = time(6, [&] { (void)ev.multiply(a, b); });
    const ckks::Ciphertext t = ev.multiply(a, b);
    u.relin = time(4, [&] { (void)ev.relinearize(t, rlk); });
    u.rescale = time(6, [&] { (void)ev.rescale(a); });
    const ckks::Plaintext pt =
        enc.encode(std::vector<double>(ctx.max_slots(), 0.5), level, ctx.default_scale());
    u.cmult = time(6, [&] { (void)ev.multiply_plain(a, pt); });
    u.add = time(10, [&] { (void)ev.add(a, b); });
    return u;
  }
};

struct Result {
  double seconds = 0;  // per product (extrapolated when sampled)
  bool sampled = false;
  std::string sample_note;
  double max_err = -1;  // full 1-thread runs: max |decrypted - exact| over every slot
  OpCounts counts;      // full run, from the dry run
  std::size_t out_level = 0;
};

Matrix random_matrix(core::Prng& p, std::size_t r, std::size_t c) {
  Matrix m(r, c);
  for (double& x : m.data) x = 2.0 * ((p.next_u64() >> 11) * 0x1p-53) - 1.0;
  return m;
}

std::string fmt(double s) {
  char buf[32];
  if (s >= 100) {
    std::snprintf(buf, sizeof buf, "%.0f", s);
  } else if (s >= 10) {
    std::snprintf(buf, sizeof buf, "%.1f", s);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f", s);
  }
  return buf;
}

std::string cell(const Result* r) {
  if (!r) return "-";
  return fmt(r->seconds) + (r->sampled ? "*" : "");
}

std::string ratio(const Result* num, const Result* den) {
  if (!num || !den) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%s", num->seconds / den->seconds,
                (num->sampled || den->sampled) ? "*" : "");
  return buf;
}

struct Args {
  std::vector<Shape> shapes;
  std::vector<int> threads = {1, 2};
  std::set<std::string> configs;  // empty: all
  double max_run = 15;            // seconds predicted before a run is sampled
  double priority_max_run = 60;   // the same for HETAL's DiagABT and ours (run in full if can)
  double sample_target = 4;       // seconds a sampled run aims at
  double budget = 1080;           // predicted seconds of timed runs; sampling tightens to fit
  bool plan = false;
  bool check = true;
};

void usage() {
  std::printf(
      "bench_matrix [--quick] [--shapes a x b x c,...|mnist] [--threads 1,2] [--configs id,...]\n"
      "             [--max-run S] [--sample-target S] [--budget S] [--plan] [--no-check]\n"
      "configs:");
  for (const Config& c : kConfigs) std::printf(" %s", c.id.c_str());
  std::printf("\n");
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

Args parse(int argc, char** argv) {
  Args a;
  bool quick = false;
  std::vector<std::string> names;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        usage();
        std::exit(2);
      }
      return argv[++i];
    };
    if (s == "--quick") {
      quick = true;
    } else if (s == "--shapes") {
      names = split(value());
    } else if (s == "--threads") {
      a.threads.clear();
      for (const auto& t : split(value())) a.threads.push_back(std::stoi(t));
    } else if (s == "--configs") {
      for (const auto& c : split(value())) a.configs.insert(c);
    } else if (s == "--max-run") {
      a.max_run = std::stod(value());
    } else if (s == "--sample-target") {
      a.sample_target = std::stod(value());
    } else if (s == "--budget") {
      a.budget = std::stod(value());
    } else if (s == "--plan") {
      a.plan = true;
    } else if (s == "--no-check") {
      a.check = false;
    } else {
      usage();
      std::exit(s == "--help" || s == "-h" ? 0 : 2);
    }
  }
  for (const Shape& sh : kShapes) {
    if (quick && sh.a > 256) continue;
    if (!names.empty() && std::find(names.begin(), names.end(), sh.name) == names.end()) continue;
    a.shapes.push_back(sh);
  }
  for (const auto& n : names) {
    bool known = false;
    for (const Shape& sh : kShapes) known = known || sh.name == n;
    if (!known) {
      // any other a x b x c
      std::size_t x = 0, y = 0, z = 0;
      if (std::sscanf(n.c_str(), "%zux%zux%zu", &x, &y, &z) != 3) {
        std::fprintf(stderr, "unknown shape %s\n", n.c_str());
        std::exit(2);
      }
      a.shapes.push_back({n, x, y, z});
    }
  }
  return a;
}

// Sampling plan: a prefix of the outer loop, or (Jin et al.) a reduced problem.
struct Plan {
  Problem problem;
  Options opt;
  bool sampled = false;
  std::string note;
};

// Sampled runs keep at least `threads` independent pieces of work, so that a 2-thread sample
// is as parallel as the full run.
Plan make_plan(const Config& cfg, const Problem& full, const UnitCosts& u, const Args& args,
               std::size_t level, std::size_t threads) {
  Plan p{full, options_of(cfg), false, ""};
  const OpCounts counts = dry_run(cfg.alg, full, p.opt, level, level).counts;
  const double predicted = u.model(counts);
  const bool jin = cfg.alg == Algorithm::jin_abt || cfg.alg == Algorithm::jin_atb;
  const bool priority = cfg.alg == Algorithm::diag_abt || cfg.alg == Algorithm::diag_atb_fold;
  // Jin et al. hold b + b*c (ABt) or b + c (AtB) ciphertexts of 10 MB: always reduce b.
  if (predicted <= (priority ? args.priority_max_run : args.max_run) && !(jin && full.b > 64)) {
    return p;
  }
  p.sampled = true;
  if (jin) {
    // Reduced b (and c): the per-product work is the same, so costs scale with the counts.
    // (A's columns plus the sampled B ciphertexts stay near 1 GB.)
    Problem q = full;
    q.c = cfg.alg == Algorithm::jin_abt ? std::max<std::size_t>(1, threads) : 1;
    q.b = cfg.alg == Algorithm::jin_abt ? 32 : std::max<std::size_t>(2, threads);
    if (cfg.alg == Algorithm::jin_atb) {
      const double per = u.model(dry_run(cfg.alg, q, p.opt, level, level).counts);
      const double scale = std::clamp(args.sample_target / per, 1.0, 4.0);
      q.b = std::min(full.b, static_cast<std::size_t>(static_cast<double>(q.b) * scale));
    }
    p.problem = q;
    std::ostringstream s;
    s << "reduced shape (" << q.a << "," << q.b << "," << q.c << ")";
    p.note = s.str();
    return p;
  }
  const std::size_t n = outer_iterations(cfg.alg, full);
  const double per_iter = predicted / static_cast<double>(n);
  std::size_t k = static_cast<std::size_t>(args.sample_target / per_iter);
  k = std::clamp<std::size_t>(k, std::min(n, std::max<std::size_t>(1, threads)), n);
  if (k == n) {
    p.sampled = false;
    return p;
  }
  p.opt.sample_outer = k;
  std::ostringstream s;
  s << k << " of " << n << " outer iterations";
  // One outer iteration can still be long (ColMajor at b = 769: ~550 rotations): then also
  // fewer column blocks of b, whose work per block is identical.
  const std::size_t nb = (full.b + full.block.s1 - 1) / full.block.s1;
  const double one = u.model(dry_run(cfg.alg, full, p.opt, level, level).counts);
  if (!priority && nb > 1 && one > 2 * args.sample_target) {
    const std::size_t keep = std::clamp<std::size_t>(
        static_cast<std::size_t>(static_cast<double>(nb) * args.sample_target / one),
        std::min(nb, std::max<std::size_t>(1, threads)), nb);
    p.problem.b = keep * full.block.s1;
    s << ", " << keep << " of " << nb << " column blocks";
  }
  p.note = s.str();
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  if (!std::getenv("OMP_WAIT_POLICY")) setenv("OMP_WAIT_POLICY", "passive", 1);
  const Args args = parse(argc, argv);
  std::vector<const Config*> configs;
  for (const Config& c : kConfigs) {
    if (args.configs.empty() || args.configs.count(c.id)) configs.push_back(&c);
  }
  const auto t_start = Clock::now();
  std::printf("# bench_matrix: HETAL Table 1 on hetal's CKKS engine\n\n");
  Bench bench;
  const std::size_t L = bench.level;
  std::printf("Parameters: %s, N = 2^%d, %zu slots, inputs at level %zu, scale 2^%d.\n",
              bench.ctx.params().name.c_str(), bench.ctx.log_n(), bench.ctx.max_slots(), L,
              bench.ctx.params().log_scale);
  auto loadavg = [] {
    double l[3] = {0, 0, 0};
    if (getloadavg(l, 3) < 0) return std::string("?");
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.2f %.2f %.2f", l[0], l[1], l[2]);
    return std::string(buf);
  };
  std::printf("Load average at start: %s (the machine is shared).\n", loadavg().c_str());
  std::printf("Machine: %d hardware threads; threads measured:", omp_get_num_procs());
  for (int t : args.threads) std::printf(" %d", t);
  std::printf(".\n\n");

  std::map<int, UnitCosts> units;
  std::printf("## Unit costs at level %zu (ms)\n\n", L);
  std::printf(
      "| threads | rotate | hoisted rotate (each after the first) | tensor | relinearize | "
      "rescale | mask mult | add |\n|---|---|---|---|---|---|---|---|\n");
  for (int t : args.threads) {
    const UnitCosts u = bench.calibrate(t);
    units[t] = u;
    std::printf("| %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f |\n", t, u.rot * 1e3,
                u.hoisted * 1e3, u.tensor * 1e3, u.relin * 1e3, u.rescale * 1e3, u.cmult * 1e3,
                u.add * 1e3);
  }
  std::printf("\n");
  std::fflush(stdout);

  // Plans for every shape, config and thread count; sampling tightens until the predicted
  // time of the timed runs fits the budget.
  std::map<std::string, std::map<std::string, std::map<int, Plan>>> all_plans;
  Args tuned = args;
  for (int round = 0;; ++round) {
    double total = 0;
    all_plans.clear();
    for (const Shape& sh : args.shapes) {
      const Problem full = Problem::with_training_block(sh.a, sh.b, sh.c, bench.ctx.max_slots());
      for (const Config* cfg : configs)
        for (int t : args.threads) {
          const Plan p = make_plan(*cfg, full, units[t], tuned, L, static_cast<std::size_t>(t));
          total += units[t].model(dry_run(cfg->alg, p.problem, p.opt, L, L).counts);
          all_plans[sh.name][cfg->id][t] = p;
        }
    }
    if (total <= args.budget || round == 8) {
      std::printf(
          "Sampling above %.1f s (%.1f s for DiagABT and Fold), sampled runs aim at "
          "%.1f s: %.0f s of timed runs predicted (budget %.0f s).\n\n",
          tuned.max_run, tuned.priority_max_run, tuned.sample_target, total, args.budget);
      break;
    }
    tuned.max_run *= 0.7;
    tuned.priority_max_run *= 0.7;
    tuned.sample_target *= 0.7;
  }

  // results[shape][config][threads]
  std::map<std::string, std::map<std::string, std::map<int, Result>>> results;
  double planned = 0;
  core::Prng prng(core::Seed{10});
  for (const Shape& sh : args.shapes) {
    const Problem full = Problem::with_training_block(sh.a, sh.b, sh.c, bench.ctx.max_slots());
    std::printf("## %s: %s\n\n", sh.name.c_str(), full.str().c_str());
    // Keys for exactly the steps the planned runs use.
    std::map<std::string, std::map<int, Plan>>& plans = all_plans[sh.name];
    std::set<long long> steps;
    bool conj = false;
    for (const Config* cfg : configs) {
      for (int t : args.threads) {
        const Plan& p = plans[cfg->id][t];
        const DryRun d = dry_run(cfg->alg, p.problem, p.opt, L, L);
        steps.insert(d.rotation_steps.begin(), d.rotation_steps.end());
        conj = conj || d.conjugation;
      }
    }
    if (args.plan) {
      for (const Config* cfg : configs) {
        for (int t : args.threads) {
          const Plan& p = plans[cfg->id][t];
          const OpCounts c = dry_run(cfg->alg, p.problem, p.opt, L, L).counts;
          std::printf("  %-24s %dT predicted %7.1f s%s%s\n", cfg->label.c_str(), t,
                      units[t].model(c), p.sampled ? "  sampled: " : "", p.note.c_str());
          planned += units[t].model(c);
        }
      }
      std::printf("  %zu rotation keys\n\n", steps.size());
      continue;
    }
    bench.keys_for(steps, conj);
    std::printf("%zu rotation keys%s (cumulative keygen %.1f s)\n\n", steps.size(),
                conj ? " + conjugation" : "", bench.keygen_s);

    // Inputs: one encryption per (layout, problem), shared by every config that uses it.
    std::map<std::string, std::pair<Matrix, EncMatrix>> inputs;
    auto input = [&](const Layout& l, std::size_t rows, std::size_t cols) -> const auto& {
      const std::string key = l.describe();
      auto it = inputs.find(key);
      if (it == inputs.end()) {
        Matrix m = random_matrix(prng, rows, cols);
        EncMatrix e = encrypt(bench.enc, bench.encryptor, bench.ctx, l, m, L);
        it = inputs.emplace(key, std::make_pair(std::move(m), std::move(e))).first;
      }
      return it->second;
    };

    for (const Config* cfg : configs) {
      for (int t : args.threads) {
        const Plan& p = plans[cfg->id][t];
        const auto [la, lb] = input_layouts(cfg->alg, p.problem);
        const auto [sa, sb] = input_shapes(cfg->alg, p.problem);
        const auto& A = input(la, sa.first, sa.second);
        const auto& B = input(lb, sb.first, sb.second);
        omp_set_num_threads(t);
        Executor ex(bench.ctx, bench.enc, bench.ev, bench.rlk, bench.gk, p.opt);
        // Masks are constants of the algorithm: encode them before the clock starts.
        ex.set_dry(true);
        run(ex, cfg->alg, EncMatrix::shadow(la, L), EncMatrix::shadow(lb, L));
        ex.set_dry(false);
        ex.reset_counts();
        const auto t0 = Clock::now();
        const EncMatrix out = run(ex, cfg->alg, A.second, B.second);
        const double s = seconds_since(t0);
        Result r;
        const DryRun full_run = dry_run(cfg->alg, full, options_of(*cfg), L, L);
        r.counts = full_run.counts;
        r.out_level = full_run.output_level;
        r.sampled = p.sampled;
        r.sample_note = p.note;
        r.seconds =
            p.sampled ? s * units[t].model(full_run.counts) / units[t].model(ex.counts()) : s;
        if (!p.sampled && t == args.threads.front() && args.check) {
          const auto got = decrypt_slots(bench.enc, bench.dec, out);
          const auto want = pack(out.layout, reference(cfg->alg, A.first, B.first));
          double err = 0;
          for (std::size_t i = 0; i < got.size(); ++i)
            for (std::size_t j = 0; j < want[i].size(); ++j)
              err = std::max(err, std::abs(got[i][j] - want[i][j]));
          r.max_err = err;
        }
        std::printf("  %-24s %d thread%s %8.2f s%s%s", cfg->label.c_str(), t, t > 1 ? "s" : " ",
                    r.seconds, r.sampled ? "  (extrapolated from " : "",
                    r.sampled ? (p.note + ", measured " + fmt(s) + " s)").c_str() : "");
        if (r.max_err >= 0) std::printf("  max err %.1e", r.max_err);
        std::printf("\n");
        std::fflush(stdout);
        results[sh.name][cfg->id][t] = r;
      }
    }
    std::printf("\n");
  }
  if (args.plan) {
    std::printf(
        "Predicted time of the timed runs: %.0f s (plus key generation, encryption and "
        "mask encoding).\n",
        planned);
    return 0;
  }

  auto get = [&](const std::string& shape, const std::string& id, int t) -> const Result* {
    auto a = results.find(shape);
    if (a == results.end()) return nullptr;
    auto b = a->second.find(id);
    if (b == a->second.end()) return nullptr;
    auto c = b->second.find(t);
    return c == b->second.end() ? nullptr : &c->second;
  };

  for (int t : args.threads) {
    const char* th = t > 1 ? "threads" : "thread";
    std::printf("## Table 1, A B^T, %d %s (seconds per product; * = extrapolated)\n\n", t, th);
    std::printf(
        "| (a,b,c) | Jin et al. | Jin et al. (relin per product) | ColMajor | DiagABT (paper) | "
        "DiagABT (ours) | paper: x Jin / x Jin relin each / x ColMajor | ours: x Jin / x Jin "
        "relin each / x ColMajor | HETAL (GPU): x Jin / x ColMajor |\n"
        "|---|---|---|---|---|---|---|---|---|\n");
    for (const Shape& sh : args.shapes) {
      auto g = [&](const char* id) { return get(sh.name, id, t); };
      auto it = kPaperTimes.find(sh.name);
      char paper[64] = "-";
      if (it != kPaperTimes.end()) {
        std::snprintf(paper, sizeof paper, "%.2f / %.2f", it->second.jin_abt / it->second.diag_abt,
                      it->second.colmajor / it->second.diag_abt);
      }
      std::printf(
          "| (%zu,%zu,%zu)%s | %s | %s | %s | %s | %s | %s / %s / %s | %s / %s / %s | %s |\n", sh.a,
          sh.b, sh.c, sh.name == "mnist" ? " MNIST" : "", cell(g("jin_abt")).c_str(),
          cell(g("jin_abt_paper")).c_str(), cell(g("colmajor")).c_str(),
          cell(g("abt_paper")).c_str(), cell(g("abt")).c_str(),
          ratio(g("jin_abt"), g("abt_paper")).c_str(),
          ratio(g("jin_abt_paper"), g("abt_paper")).c_str(),
          ratio(g("colmajor"), g("abt_paper")).c_str(), ratio(g("jin_abt"), g("abt")).c_str(),
          ratio(g("jin_abt_paper"), g("abt")).c_str(), ratio(g("colmajor"), g("abt")).c_str(),
          paper);
    }
    std::printf("\n## Table 1, A^T B, %d %s (seconds per product; * = extrapolated)\n\n", t, th);
    std::printf(
        "| (a,b,c) | Jin et al. | RowMajor | DiagATB-PRot (paper) | DiagATB-PRotUp (paper) | "
        "DiagATB-PRot (ours) | DiagATB-PRotUp (ours) | DiagATB-Fold (ours) | paper PRot: x Jin / "
        "x RowMajor | Fold: x Jin / x RowMajor | HETAL (GPU): x Jin / x RowMajor |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (const Shape& sh : args.shapes) {
      auto g = [&](const char* id) { return get(sh.name, id, t); };
      auto it = kPaperTimes.find(sh.name);
      char paper[64] = "-";
      if (it != kPaperTimes.end()) {
        std::snprintf(paper, sizeof paper, "%.2f / %.2f", it->second.jin_atb / it->second.diag_atb,
                      it->second.rowmajor / it->second.diag_atb);
      }
      std::printf(
          "| (%zu,%zu,%zu)%s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s / %s | %s |\n", sh.a,
          sh.b, sh.c, sh.name == "mnist" ? " MNIST" : "", cell(g("jin_atb")).c_str(),
          cell(g("rowmajor")).c_str(), cell(g("prot_paper")).c_str(),
          cell(g("protup_paper")).c_str(), cell(g("prot")).c_str(), cell(g("protup")).c_str(),
          cell(g("fold")).c_str(), ratio(g("jin_atb"), g("prot_paper")).c_str(),
          ratio(g("rowmajor"), g("prot_paper")).c_str(), ratio(g("jin_atb"), g("fold")).c_str(),
          ratio(g("rowmajor"), g("fold")).c_str(), paper);
    }
    std::printf("\n");
  }

  std::printf(
      "## HETAL Table 1 (A40 GPU, HEaaN, level 12), seconds, and ours on 2 CPU threads\n\n");
  std::printf(
      "| (a,b,c) | DiagABT GPU | DiagABT ours | ratio | DiagATB GPU | DiagATB ours (Fold) | "
      "ratio |\n|---|---|---|---|---|---|---|\n");
  const int tmax = *std::max_element(args.threads.begin(), args.threads.end());
  for (const Shape& sh : args.shapes) {
    auto it = kPaperTimes.find(sh.name);
    if (it == kPaperTimes.end()) continue;
    const Result* abt = get(sh.name, "abt", tmax);
    const Result* fold = get(sh.name, "fold", tmax);
    std::printf("| (%zu,%zu,%zu) | %.3f | %s | %s | %.3f | %s | %s |\n", sh.a, sh.b, sh.c,
                it->second.diag_abt, cell(abt).c_str(),
                abt ? fmt(abt->seconds / it->second.diag_abt).c_str() : "-", it->second.diag_atb,
                cell(fold).c_str(), fold ? fmt(fold->seconds / it->second.diag_atb).c_str() : "-");
  }
  std::printf("\n");

  std::printf("## Operation counts: CMult / Mult / Rot (Table 7 check) and the improved runs\n\n");
  std::printf(
      "| (a,b,c) | algorithm | paper mode | Table 7 | ours: CMult/Mult/Rot (hoisted) | "
      "relin | rescale | conj | out level |\n|---|---|---|---|---|---|---|---|---|\n");
  for (const Shape& sh : args.shapes) {
    const Problem full = Problem::with_training_block(sh.a, sh.b, sh.c, bench.ctx.max_slots());
    for (Algorithm alg : kAllAlgorithms) {
      const OpCounts pc = dry_run(alg, full, Options::paper(), L, L).counts;
      const DryRun o = dry_run(alg, full, Options{}, L, L);
      std::string t7 = "-";
      auto a = kTable7.find(sh.name);
      if (a != kTable7.end()) {
        auto b = a->second.find(alg);
        if (b != a->second.end()) {
          const bool ok =
              b->second.cmult == pc.cmult && b->second.mult == pc.mult && b->second.rot == pc.rot;
          t7 = std::to_string(b->second.cmult) + "/" + std::to_string(b->second.mult) + "/" +
               std::to_string(b->second.rot) + (ok ? " = " : " MISMATCH");
        }
      }
      std::printf(
          "| (%zu,%zu,%zu) | %s | %zu/%zu/%zu | %s | %zu/%zu/%zu (%zu) | %zu | %zu | %zu | "
          "%zu |\n",
          sh.a, sh.b, sh.c, algorithm_name(alg), pc.cmult, pc.mult, pc.rot, t7.c_str(),
          o.counts.cmult, o.counts.mult, o.counts.rot, o.counts.hoisted, o.counts.relin,
          o.counts.rescale, o.counts.conj, o.output_level);
    }
  }
  std::printf(
      "\nNotes: baselines run with lazy relinearization/rescaling (the engine-level "
      "options that apply to them), which only favours them; \"Jin et al. (relin per "
      "product)\" is Jin et al. as HETAL ran it. \"paper\" = Options::paper() "
      "(HETAL's algorithms and counts); \"ours\" = default options. * = extrapolated from a "
      "sampled run (see the log above) by the ratio of modelled costs. Masks are encoded "
      "before timing. Key generation took %.1f s in total.\n",
      bench.keygen_s);
  std::printf("\nTotal wall time %.1f s; load average at the end: %s.\n", seconds_since(t_start),
              loadavg().c_str());
  return 0;
}
