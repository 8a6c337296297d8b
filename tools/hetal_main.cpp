// hetal: command-line front end.
//   hetal demo                      encrypted training end to end on MNIST (the main job)
//   hetal client ... / server ...   the training protocol's two roles (train_commands.h)
//   hetal cryptotl ...              CryptoTL mode: server's lower network, client's upper layers
//   hetal tour                      engine tour at the production parameters
//   hetal params                    parameter chain and security verdict
//   hetal keygen / encrypt / eval / decrypt
//                                   real keys and ciphertexts in files, client and server roles
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <complex>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <numbers>
#include <sstream>
#include <string>
#include <vector>

#include "cryptotl_commands.h"
#include "feature_commands.h"
#include "hetal/ckks/context.h"
#include "hetal/ckks/encoder.h"
#include "hetal/ckks/encryptor.h"
#include "hetal/ckks/evaluator.h"
#include "hetal/ckks/keygen.h"
#include "hetal/ckks/precision.h"
#include "hetal/ckks/serialization.h"
#include "train_commands.h"

using namespace hetal;
using namespace hetal::ckks;
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

/// Median of `reps` timed runs of f (the first run also warms caches and buffers).
template <class F>
double median_ms(F&& f, int reps = 5) {
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = Clock::now();
    f();
    t.push_back(ms_since(t0));
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

Preset preset_by_name(const std::string& name) {
  if (name == "T13") return Preset::T13;
  if (name == "T14") return Preset::T14;
  if (name == "B16-H192") return Preset::B16_H192;
  if (name == "TB13-INSECURE") return Preset::TB13_INSECURE;
  throw CLI::ValidationError(
      "--preset", "unknown preset '" + name + "' (choose T13, T14, B16-H192, TB13-INSECURE)");
}

SecurityPolicy policy(bool insecure) {
  return insecure ? SecurityPolicy::allow_insecure : SecurityPolicy::require_128;
}

void print_params(const Context& ctx) {
  const Parameters& p = ctx.params();
  const auto& sec = ctx.security();
  std::printf("parameter set   %s\n", p.name.c_str());
  std::printf("ring degree     N = 2^%d (%zu complex slots)\n", p.log_n, ctx.max_slots());
  std::printf("secret          %s\n",
              p.secret.kind == SecretDistribution::Kind::sparse_ternary
                  ? ("sparse ternary, h = " + std::to_string(p.secret.hamming_weight)).c_str()
                  : "uniform ternary");
  std::printf("Q chain         %zu primes:", p.q_primes.size());
  for (auto q : p.q_primes) std::printf(" %.0f", std::round(std::log2(static_cast<double>(q))));
  std::printf("  (bits)\nP (special)     %zu primes:", p.p_primes.size());
  for (auto q : p.p_primes) std::printf(" %.0f", std::round(std::log2(static_cast<double>(q))));
  std::printf("  (bits)\n");
  std::printf("key switching   %zu primes per digit, dnum = %zu at the top level\n", p.alpha(),
              ctx.rns().digits(p.q_primes.size()));
  std::printf("log2(QP)        %.1f bits (128-bit limit %s)\n", sec.log_qp,
              sec.limit > 0 ? std::to_string(static_cast<int>(sec.limit)).c_str() : "unknown");
  std::printf("levels          top %zu, user top %zu, default scale 2^%d\n", ctx.max_level(),
              ctx.user_top_level(), p.log_scale);
  std::printf("security        %s\n",
              sec.secure ? "128-bit (HE standard table)" : ("INSECURE: " + sec.reason).c_str());
}

std::vector<Complex> random_unit_disk(std::size_t n, std::uint8_t seed) {
  core::Prng p(core::Seed{seed});
  std::vector<Complex> v(n);
  for (auto& x : v) {
    x = std::polar(std::sqrt((p.next_u64() >> 11) * 0x1p-53),
                   2 * std::numbers::pi * ((p.next_u64() >> 11) * 0x1p-53));
  }
  return v;
}

int run_tour(const std::string& preset_name, bool insecure) {
  const auto t_ctx = Clock::now();
  Context ctx(Parameters::preset(preset_by_name(preset_name)), policy(insecure));
  std::printf("== hetal engine tour ==\n");
  print_params(ctx);
  std::printf("context         %.0f ms (prime tables, NTT twiddles, RNS constants)\n",
              ms_since(t_ctx));
  std::printf("threads         %d (OMP_NUM_THREADS)\n\n", omp_get_max_threads());

  const std::size_t level = ctx.user_top_level(), n = ctx.max_slots();
  const auto t = Clock::now();
  KeyGenerator kg(ctx);
  const SecretKey sk = kg.secret_key();
  const PublicKey pk = kg.public_key(sk);
  const RelinKey rlk = kg.relin_key(sk, level);
  const std::vector<long long> steps = {1, 2, 3, 4, 5, 6, 7, 8};
  const GaloisKeys gk = kg.galois_keys(sk, steps, true, level);
  std::printf(
      "keygen          %.0f ms: secret, public, relinearization and %zu Galois keys "
      "(switching keys capped at level %zu)\n",
      ms_since(t), gk.keys.size(), level);

  Encoder enc(ctx);
  Encryptor encryptor(ctx, pk);
  Decryptor decryptor(ctx, sk);
  Evaluator ev(ctx);
  const auto a = random_unit_disk(n, 1), b = random_unit_disk(n, 2);

  struct Row {
    std::string op;
    double ms;
    ckks::Precision bits;
  };
  std::vector<Row> rows;
  auto decode = [&](const Ciphertext& c) { return enc.decode(decryptor.decrypt(c)); };

  Plaintext pa;
  const double t_encode = median_ms([&] { enc.encode(a, level, ctx.default_scale(), pa); });
  Ciphertext ca;
  const double t_encrypt = median_ms([&] { ca = encryptor.encrypt(pa); });
  const Ciphertext cb = encryptor.encrypt(enc.encode(b, level, ctx.default_scale()));
  std::vector<Complex> da;
  const double t_decrypt = median_ms([&] { da = decode(ca); });
  rows.push_back({"encode", t_encode, precision(enc.decode(pa), a)});
  rows.push_back({"encrypt (public key)", t_encrypt, precision(da, a)});
  rows.push_back({"decrypt + decode", t_decrypt, precision(da, a)});

  std::vector<Complex> want(n);
  Ciphertext sum;
  const double t_add = median_ms([&] { sum = ev.add(ca, cb); });
  for (std::size_t i = 0; i < n; ++i) want[i] = a[i] + b[i];
  rows.push_back({"add", t_add, precision(decode(sum), want)});

  Ciphertext prod, rescaled;
  const double t_mul = median_ms([&] { prod = ev.multiply_relin(ca, cb, rlk); });
  const double t_rescale = median_ms([&] { rescaled = ev.rescale(prod); });
  for (std::size_t i = 0; i < n; ++i) want[i] = a[i] * b[i];
  const auto pbits = precision(decode(rescaled), want);
  rows.push_back({"multiply + relinearize", t_mul, pbits});
  rows.push_back({"rescale", t_rescale, pbits});

  Ciphertext rot;
  const double t_rot = median_ms([&] { rot = ev.rotate(ca, 1, gk); });
  for (std::size_t i = 0; i < n; ++i) want[i] = a[(i + 1) % n];
  rows.push_back({"rotate by 1", t_rot, precision(decode(rot), want)});

  std::vector<Ciphertext> hoisted;
  // Free the previous results first so that every run after the first reuses their buffers.
  const double t_hoist = median_ms([&] {
                           hoisted.clear();
                           hoisted = ev.rotate_hoisted(ca, steps, gk);
                         }) /
                         static_cast<double>(steps.size());
  for (std::size_t i = 0; i < n; ++i) want[i] = a[(i + 8) % n];
  rows.push_back(
      {"hoisted rotations (8, per rotation)", t_hoist, precision(decode(hoisted.back()), want)});

  Ciphertext conj;
  const double t_conj = median_ms([&] { conj = ev.conjugate(ca, gk); });
  for (std::size_t i = 0; i < n; ++i) want[i] = std::conj(a[i]);
  rows.push_back({"conjugate", t_conj, precision(decode(conj), want)});

  std::printf("\n%-36s %10s %12s %12s\n", "operation (user top level)", "time ms", "mean bits",
              "worst bits");
  for (const auto& r : rows) {
    std::printf("%-36s %10.2f %12.1f %12.1f\n", r.op.c_str(), r.ms, r.bits.mean, r.bits.worst);
  }
  std::printf(
      "\nTimes are medians of 5 runs. Values are random in the unit disk, %zu slots;\n"
      "precision is -log2 of the mean and of the worst absolute error against plain\n"
      "complex arithmetic.\n",
      n);
  return 0;
}

// --------------------------------------------------------------- keys and ciphertexts in files

struct KeyDir {
  fs::path dir;
  fs::path params() const { return dir / "params.bin"; }
  fs::path secret() const { return dir / "secret.key"; }
  fs::path pub() const { return dir / "public.key"; }
  fs::path relin() const { return dir / "relin.key"; }
  fs::path galois() const { return dir / "galois.key"; }
};

std::vector<long long> parse_steps(const std::string& s) {
  std::vector<long long> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    try {
      std::size_t used = 0;
      out.push_back(std::stoll(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw CLI::ValidationError("--rotations", "not an integer: '" + item + "'");
    }
  }
  return out;
}

int run_keygen(const std::string& preset_name, const std::string& dir, const std::string& rotations,
               int level_opt, bool insecure) {
  Context ctx(Parameters::preset(preset_by_name(preset_name)), policy(insecure));
  const KeyDir kd{dir};
  fs::create_directories(kd.dir);
  const std::size_t level =
      level_opt < 0 ? ctx.user_top_level() : static_cast<std::size_t>(level_opt);
  if (level > ctx.max_level()) {
    throw std::invalid_argument("--level " + std::to_string(level) + " is above the chain's top " +
                                std::to_string(ctx.max_level()));
  }
  KeyGenerator kg(ctx);
  const SecretKey sk = kg.secret_key();
  save_parameters_file(ctx.params(), kd.params());
  save_file(ctx, sk, kd.secret());
  save_file(ctx, kg.public_key(sk), kd.pub());
  save_file(ctx, kg.relin_key(sk, level), kd.relin());
  const auto steps = parse_steps(rotations);
  save_file(ctx, kg.galois_keys(sk, steps, true, level), kd.galois());
  for (const auto& p : {kd.params(), kd.secret(), kd.pub(), kd.relin(), kd.galois()}) {
    std::printf("%-40s %10.2f MiB\n", p.c_str(), static_cast<double>(fs::file_size(p)) / (1 << 20));
  }
  std::printf("keys for levels <= %zu; the secret key (mode 0600) must stay with the client\n",
              level);
  return 0;
}

Context load_context(const KeyDir& kd, bool insecure) {
  return Context(load_parameters_file(kd.params()), policy(insecure));
}

std::vector<Complex> read_values(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open input file '" + path + "'");
  std::vector<Complex> v;
  std::string line;
  std::size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty() || line[0] == '#') continue;
    double re = 0, im = 0;
    char comma = 0;
    std::istringstream ls(line);
    if (!(ls >> re))
      throw std::runtime_error(path + ":" + std::to_string(lineno) + ": not a number");
    if (ls >> comma && (comma != ',' || !(ls >> im))) {
      throw std::runtime_error(path + ":" + std::to_string(lineno) + ": expected 're' or 're,im'");
    }
    if (!std::isfinite(re) || !std::isfinite(im)) {
      throw std::runtime_error(path + ":" + std::to_string(lineno) + ": value is not finite");
    }
    v.emplace_back(re, im);
  }
  if (v.empty()) throw std::runtime_error("input file '" + path + "' holds no values");
  return v;
}

int run_encrypt(const std::string& dir, const std::string& in, const std::string& out,
                int level_opt, bool seeded, bool insecure) {
  const KeyDir kd{dir};
  const Context ctx = load_context(kd, insecure);
  const auto values = read_values(in);
  const std::size_t level =
      level_opt < 0 ? ctx.user_top_level() : static_cast<std::size_t>(level_opt);
  Encoder enc(ctx);
  const Plaintext pt = enc.encode(values, level, ctx.default_scale());
  if (seeded) {
    // Client-side upload: secret-key encryption with a seeded c1 (half the size).
    const SecretKey sk = load_file<SecretKey>(ctx, kd.secret());
    Encryptor e(ctx, sk);
    save_file(ctx, e.encrypt_seeded(pt), out);
  } else {
    const PublicKey pk = load_file<PublicKey>(ctx, kd.pub());
    Encryptor e(ctx, pk);
    save_file(ctx, e.encrypt(pt), out);
  }
  std::printf("encrypted %zu values (%zu slots) at level %zu into %s (%.2f MiB)\n", values.size(),
              pt.slots, level, out.c_str(), static_cast<double>(fs::file_size(out)) / (1 << 20));
  return 0;
}

Ciphertext load_any_ciphertext(const Context& ctx, const std::string& path) {
  try {
    return load_file<Ciphertext>(ctx, path);
  } catch (const SerializationError& e) {
    if (std::string(e.what()).find("SeededCiphertext") == std::string::npos) throw;
    return expand(ctx, load_file<SeededCiphertext>(ctx, path));
  }
}

int run_eval(const std::string& dir, const std::string& op, const std::string& in1,
             const std::string& in2, long long k, const std::string& out, bool insecure) {
  // Server role: parameters and public evaluation keys only; the secret key is never read.
  const KeyDir kd{dir};
  const Context ctx = load_context(kd, insecure);
  Evaluator ev(ctx);
  Ciphertext a = load_any_ciphertext(ctx, in1);
  if (op == "add" || op == "mul") {
    if (in2.empty()) throw CLI::ValidationError("--in2", "'" + op + "' needs a second ciphertext");
    const Ciphertext b = load_any_ciphertext(ctx, in2);
    if (op == "add") {
      ev.add_inplace(a, b);
    } else {
      const RelinKey rlk = load_file<RelinKey>(ctx, kd.relin());
      ev.multiply_relin_inplace(a, b, rlk);
      ev.rescale_inplace(a);
    }
  } else if (op == "rotate" || op == "conjugate") {
    const GaloisKeys gk = load_file<GaloisKeys>(ctx, kd.galois());
    if (op == "rotate")
      ev.rotate_inplace(a, k, gk);
    else
      ev.conjugate_inplace(a, gk);
  } else if (op == "square") {
    const RelinKey rlk = load_file<RelinKey>(ctx, kd.relin());
    ev.square_inplace(a);
    ev.relinearize_inplace(a, rlk);
    ev.rescale_inplace(a);
  } else {
    throw CLI::ValidationError(
        "--op", "unknown operation '" + op + "' (add, mul, square, rotate, conjugate)");
  }
  save_file(ctx, a, out);
  std::printf("%s -> %s (level %zu)\n", op.c_str(), out.c_str(), a.level());
  return 0;
}

int run_decrypt(const std::string& dir, const std::string& in, std::size_t count, bool insecure) {
  const KeyDir kd{dir};
  const Context ctx = load_context(kd, insecure);
  const SecretKey sk = load_file<SecretKey>(ctx, kd.secret());
  Decryptor dec(ctx, sk);
  Encoder enc(ctx);
  const auto values = enc.decode(dec.decrypt(load_any_ciphertext(ctx, in)));
  const std::size_t shown = count ? std::min(count, values.size()) : values.size();
  for (std::size_t i = 0; i < shown; ++i) {
    if (values[i].imag() == 0 || std::abs(values[i].imag()) < 1e-9) {
      std::printf("%.9g\n", values[i].real());
    } else {
      std::printf("%.9g,%.9g\n", values[i].real(), values[i].imag());
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Blocking waits: spinning OpenMP workers hurt on a loaded 2-core machine (ckks.md 4.8).
  setenv("OMP_WAIT_POLICY", "passive", 0);
  CLI::App app{
      "hetal: privacy-preserving transfer learning with homomorphic encryption (CKKS engine)"};
  app.require_subcommand(1);
  bool insecure = false;
  app.add_flag("--insecure", insecure,
               "allow parameter sets below 128-bit security (tests and experiments only)");

  std::string preset = "B16-H192";
  auto* tour = app.add_subcommand("tour",
                                  "encrypt, compute and decrypt at the given parameters, "
                                  "with timings and precision");
  tour->add_option("--preset", preset, "T13, T14, B16-H192 (production), TB13-INSECURE")
      ->capture_default_str();

  auto* params = app.add_subcommand("params", "print a parameter set and its security verdict");
  params->add_option("--preset", preset)->capture_default_str();

  std::string dir, rotations = "1,-1", in, in2, out, op;
  int level = -1;
  bool seeded = false;
  long long k = 1;
  std::size_t count = 16;
  auto* keygen = app.add_subcommand("keygen", "client: generate keys into a directory");
  keygen->add_option("--preset", preset)->capture_default_str();
  keygen->add_option("--dir", dir, "output directory")->required();
  keygen->add_option("--rotations", rotations, "comma-separated rotation steps for Galois keys")
      ->capture_default_str();
  keygen->add_option("--level", level,
                     "highest level the switching keys serve (default: user top)");

  auto* encrypt =
      app.add_subcommand("encrypt", "client: encrypt values (one 're' or 're,im' per line)");
  encrypt->add_option("--dir", dir, "key directory")->required();
  encrypt->add_option("--in", in, "text file of values")->required();
  encrypt->add_option("--out", out, "ciphertext file")->required();
  encrypt->add_option("--level", level, "encryption level (default: user top)");
  encrypt->add_flag("--seeded", seeded, "secret-key encryption with a seeded half (half the size)");

  auto* eval = app.add_subcommand("eval", "server: compute on ciphertexts with public keys only");
  eval->add_option("--dir", dir, "key directory (public keys are read, never the secret key)")
      ->required();
  eval->add_option("--op", op, "add, mul, square, rotate, conjugate")->required();
  eval->add_option("--in", in, "first ciphertext")->required();
  eval->add_option("--in2", in2, "second ciphertext (add, mul)");
  eval->add_option("-k,--steps", k, "rotation steps (rotate)")->capture_default_str();
  eval->add_option("--out", out, "result ciphertext")->required();

  auto* decrypt = app.add_subcommand("decrypt", "client: decrypt and print values");
  decrypt->add_option("--dir", dir, "key directory")->required();
  decrypt->add_option("--in", in, "ciphertext file")->required();
  decrypt->add_option("--count", count, "values to print (0: all)")->capture_default_str();

  cli::TrainingCommands training(app, insecure);
  cli::FeatureCommands feature_commands(app);
  cli::CryptotlCommands cryptotl(app, insecure);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (int code = 0; training.run(code)) return code;
    if (int code = 0; feature_commands.run(code)) return code;
    if (int code = 0; cryptotl.run(code)) return code;
    if (*tour) return run_tour(preset, insecure);
    if (*params) {
      print_params(
          Context(Parameters::preset(preset_by_name(preset)), SecurityPolicy::allow_insecure));
      return 0;
    }
    if (*keygen) return run_keygen(preset, dir, rotations, level, insecure);
    if (*encrypt) return run_encrypt(dir, in, out, level, seeded, insecure);
    if (*eval) return run_eval(dir, op, in, in2, k, out, insecure);
    if (*decrypt) return run_decrypt(dir, in, count, insecure);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hetal: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
