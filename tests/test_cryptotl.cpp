// CryptoTL's lower network: the fused form against the layers, the encrypted network against the
// plain one (C14, 128-bit), the model file's checks, the keys it needs, and the DP mechanism.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "hetal/ckks/encryptor.h"
#include "hetal/ckks/keygen.h"
#include "hetal/cryptotl/encrypted_network.h"
#include "hetal/nn/lower_network.h"
#include "hetal/nn/metrics.h"
#include "nn_util.h"

using namespace hetal;
namespace fs = std::filesystem;

namespace {

using test::random_network;

std::vector<float> random_inputs(std::size_t rows, std::size_t d, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> x(rows * d);
  for (auto& v : x) v = u(g);
  return x;
}

struct Keys {
  ckks::Context ctx{cryptotl::default_parameters()};
  ckks::Encoder enc{ctx};
  ckks::KeyGenerator kg{ctx, core::Seed{5}};
  rlwe::SecretKey sk = kg.secret_key();
  rlwe::RelinKey rlk = kg.relin_key(sk);
  ckks::Encryptor encryptor{ctx, sk, core::Seed{6}};
  ckks::Decryptor dec{ctx, sk};
  ckks::Evaluator ev{ctx};
};

fs::path temp_file(const char* name) {
  return fs::temp_directory_path() / (std::string("hetal_cryptotl_") + name);
}

}  // namespace

TEST(CryptoTL, FusedNetworkEqualsTheLayers) {
  const auto net = random_network(24, 1);
  const auto f = nn::fuse(net);
  const auto x = random_inputs(5, 24, 2);
  const std::vector<double> xd(x.begin(), x.end());
  const auto fused = nn::forward(f, xd, 5);
  for (std::size_t r = 0; r < 5; ++r) {
    const auto want = nn::forward_layers(net, std::span(xd).subspan(r * 24, 24));
    ASSERT_EQ(want.size(), 22u);
    for (std::size_t i = 0; i < 22; ++i) EXPECT_NEAR(fused[r * 22 + i], want[i], 1e-12);
  }
}

TEST(CryptoTL, ParametersAre128BitSecure) {
  const auto rep = ckks::security_report(cryptotl::default_parameters());
  EXPECT_TRUE(rep.secure) << rep.reason;
  EXPECT_LE(rep.log_qp, 438);
}

// The whole encrypted network, many samples per ciphertext (a full one and a partial one), two
// threads across the ciphertexts, against the plain network in double precision.
TEST(CryptoTL, EncryptedEqualsPlainWithin1e3) {
  Keys k;
  omp_set_num_threads(2);
  for (std::size_t d : {100, 57}) {
    const auto net = random_network(d, d);
    const std::size_t level = k.ctx.user_top_level();
    const cryptotl::EncryptedLowerNetwork enc_net(k.ctx, k.enc, net, level);
    const auto& pk = enc_net.packing();
    EXPECT_EQ(pk.block, d == 100 ? 128u : 64u);
    EXPECT_EQ(pk.per_ciphertext, k.ctx.max_slots() / pk.block);
    // the client's rotation set, from the shape alone, is what the network uses
    EXPECT_EQ(cryptotl::required_rotations(k.ctx, k.enc, d), enc_net.rotations());
    const auto gk = k.kg.galois_keys(k.sk, enc_net.rotations(), false);
    const std::size_t rows = pk.per_ciphertext + 7;
    const auto x = random_inputs(rows, d, 3 * d);
    std::vector<ckks::Ciphertext> cts;
    for (std::size_t first = 0; first < rows; first += pk.per_ciphertext) {
      const std::size_t n = std::min(pk.per_ciphertext, rows - first);
      const auto slots = pk.pack(x, first, n, k.ctx.max_slots());
      cts.push_back(k.encryptor.encrypt(
          k.enc.encode(std::span<const double>(slots), level, k.ctx.default_scale())));
    }
    const auto outs = enc_net.forward_all(k.ev, cts, k.rlk, gk);
    std::vector<float> got;
    for (std::size_t c = 0; c < outs.size(); ++c) {
      EXPECT_EQ(outs[c].level(), level - cryptotl::kDepth);
      const auto v = k.enc.decode_real(k.dec.decrypt(outs[c]));
      pk.unpack(v, std::min(pk.per_ciphertext, rows - c * pk.per_ciphertext), got);
      // slots outside the outputs stay zero (the layout hetal::matrix's blocks expect)
      for (std::size_t i = pk.out_dim; i < pk.block; ++i) EXPECT_LT(std::abs(v[i]), 1e-3);
    }
    const std::vector<double> xd(x.begin(), x.end());
    const auto want = nn::forward(nn::fuse(net), xd, rows);
    ASSERT_EQ(got.size(), want.size());
    double err = 0, mag = 0;
    for (std::size_t i = 0; i < want.size(); ++i) {
      err = std::max(err, std::abs(double(got[i]) - want[i]));
      mag = std::max(mag, std::abs(want[i]));
    }
    EXPECT_LT(err, 1e-3) << "d = " << d;
    std::printf("d = %zu: %zu samples in %zu ciphertexts, max error %.2e (outputs up to %.2f)\n", d,
                rows, cts.size(), err, mag);
    EXPECT_GT(mag, 0.1);  // the outputs are not trivially small
  }
}

// The head's input as HETAL reads it (compact diagonals, the bias column, a partial
// ciphertext): each present sample's outputs then a 1, and exact zeros in the blocks of absent
// samples (f(0) there would enter DiagATB's sums as padding rows).
TEST(CryptoTL, HeadFeaturesHaveTheBiasColumnAndZeroPadding) {
  Keys k;
  const std::size_t d = 30, level = k.ctx.user_top_level();
  const auto net = random_network(d, 21);
  const cryptotl::EncryptedLowerNetwork enc_net(
      k.ctx, k.enc, net, level, cryptotl::NetworkOptions{.compact = true, .bias_column = true});
  const auto& pk = enc_net.packing();
  const auto gk = k.kg.galois_keys(k.sk, enc_net.rotations(), false);
  const std::size_t rows = pk.per_ciphertext / 2 + 3;
  const auto x = random_inputs(rows, d, 8);
  const auto slots = pk.pack(x, 0, rows, k.ctx.max_slots());
  const auto ct = k.encryptor.encrypt(
      k.enc.encode(std::span<const double>(slots), level, k.ctx.default_scale()));
  EXPECT_THROW(enc_net.forward(k.ev, ct, k.rlk, gk, pk.per_ciphertext + 1), std::invalid_argument);
  const auto v = k.enc.decode_real(k.dec.decrypt(enc_net.forward(k.ev, ct, k.rlk, gk, rows)));
  const std::vector<double> xd(x.begin(), x.end());
  const auto want = nn::forward(nn::fuse(net), xd, rows);
  double err = 0, pad = 0;
  for (std::size_t r = 0; r < pk.per_ciphertext; ++r)
    for (std::size_t i = 0; i < pk.block; ++i) {
      const double got = v[r * pk.block + i];
      if (r >= rows || i > pk.out_dim)
        pad = std::max(pad, std::abs(got));
      else
        err = std::max(err, std::abs(got - (i == pk.out_dim ? 1.0 : want[r * pk.out_dim + i])));
    }
  EXPECT_LT(err, 1e-3);
  EXPECT_LT(pad, 1e-3);
  // f(0) is far from zero: the padding would show without the mask.
  const auto f0 = nn::forward(nn::fuse(net), std::vector<double>(d, 0.0), 1);
  double f0max = 0;
  for (double t : f0) f0max = std::max(f0max, std::abs(t));
  EXPECT_GT(f0max, 0.05);
}

TEST(CryptoTL, MissingRotationKeysAndBadShapesAreRefused) {
  Keys k;
  const auto net = random_network(40, 9);
  const cryptotl::EncryptedLowerNetwork enc_net(k.ctx, k.enc, net, k.ctx.user_top_level());
  auto steps = enc_net.rotations();
  steps.pop_back();
  const auto partial = k.kg.galois_keys(k.sk, steps, false);
  try {
    enc_net.check_keys(partial);
    FAIL() << "missing rotation accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("lack rotation"), std::string::npos) << e.what();
  }
  EXPECT_THROW(cryptotl::EncryptedLowerNetwork(k.ctx, k.enc, net, 3), std::invalid_argument);
  // a ciphertext at another level than the network was built for
  const auto ct =
      k.encryptor.encrypt(k.enc.encode(std::vector<double>(8, 0.5), 3, k.ctx.default_scale()));
  const auto gk = k.kg.galois_keys(k.sk, enc_net.rotations(), false);
  EXPECT_THROW(enc_net.forward(k.ev, ct, k.rlk, gk), std::invalid_argument);
  EXPECT_THROW(cryptotl::Packing(5, 1024), std::invalid_argument);
  EXPECT_THROW(cryptotl::Packing(3000, 1024), std::invalid_argument);
}

TEST(CryptoTL, ModelFileRoundTripAndCorruptionRefused) {
  const auto net = random_network(30, 4);
  const fs::path p = temp_file("model.tln");
  nn::save_lower_network(net, p.string());
  EXPECT_EQ(fs::status(p).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  const auto back = nn::load_lower_network(p.string());
  EXPECT_EQ(back.dim, 30u);
  EXPECT_EQ(back.w1, net.w1);
  EXPECT_EQ(back.b2, net.b2);
  EXPECT_EQ(back.source, "random");
  std::string bytes;
  {
    std::ifstream in(p, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto refused = [&](const std::string& content, const char* what) {
    const fs::path q = temp_file("bad.tln");
    std::ofstream(q, std::ios::binary) << content;
    try {
      nn::load_lower_network(q.string());
      ADD_FAILURE() << "accepted: " << what;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(q.string()), std::string::npos) << e.what();
    }
    fs::remove(q);
  };
  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 1;
  refused(flipped, "checksum");
  refused(bytes.substr(0, bytes.size() - 40), "truncated");
  refused(bytes + "x", "after");
  refused("HETALGLV" + bytes.substr(8), "magic");
  std::string version = bytes;
  version[8] = 2;
  refused(version, "version");
  std::string dim = bytes;
  dim[12] = 3;  // dimension 3
  refused(dim, "dimension");
  refused("", "truncated");
  EXPECT_THROW(nn::load_lower_network((p.string() + ".missing")), std::invalid_argument);
  fs::remove(p);
}

TEST(CryptoTL, AnalyticGaussianMechanism) {
  // Balle & Wang (ICML 2018), Theorem 8: the smallest sigma with
  // Phi(D/(2s) - e s/D) - e^e Phi(-D/(2s) - e s/D) <= delta; for e = 1, delta = 1e-5, D = 1 it is
  // 3.7306 (the classical sqrt(2 ln(1.25/delta)) / e gives 4.84).
  auto delta_of = [](double eps, double s, double d) {
    auto phi = [](double t) { return 0.5 * std::erfc(-t / std::sqrt(2.0)); };
    return phi(d / (2 * s) - eps * s / d) - std::exp(eps) * phi(-d / (2 * s) - eps * s / d);
  };
  const double s = cryptotl::gaussian_sigma(1.0, 1e-5, 1.0);
  EXPECT_NEAR(s, 3.7306, 1e-3);
  EXPECT_LE(delta_of(1.0, s, 1.0), 1e-5);
  EXPECT_GT(delta_of(1.0, s * 0.999, 1.0), 1e-5);  // and no larger than needed
  for (double eps : {0.5, 4.0, 50.0}) {
    const double t = cryptotl::gaussian_sigma(eps, 1e-6, 3.0);
    EXPECT_NEAR(delta_of(eps, t, 3.0), 1e-6, 1e-8) << eps;
  }
  EXPECT_NEAR(cryptotl::gaussian_sigma(1.0, 1e-5, 2.0), 2 * s, 1e-6 * s);  // linear in Delta
  EXPECT_THROW(cryptotl::gaussian_sigma(0, 1e-5, 1), std::invalid_argument);
  EXPECT_THROW(cryptotl::gaussian_sigma(1, 1.5, 1), std::invalid_argument);
  EXPECT_THROW(cryptotl::gaussian_sigma(101, 1e-5, 1), std::invalid_argument);
}

TEST(CryptoTL, SensitivityBoundsEveryPairOfOutputs) {
  const auto net = random_network(20, 11);
  const auto f = nn::fuse(net);
  const double bound = cryptotl::output_sensitivity(f, {-1, 1, 0});
  auto x = random_inputs(200, 20, 12);
  const std::vector<double> xd(x.begin(), x.end());
  const auto y = nn::forward(f, xd, 200);
  double worst = 0;
  for (std::size_t a = 0; a < 200; ++a)
    for (std::size_t b = a + 1; b < 200; ++b) {
      double s = 0;
      for (std::size_t i = 0; i < 18; ++i) s += std::pow(y[a * 18 + i] - y[b * 18 + i], 2);
      worst = std::max(worst, std::sqrt(s));
    }
  // the box's vertices are where the outputs spread most: opposite and random vertex pairs
  std::mt19937_64 g(13);
  std::vector<double> v(40);
  for (int t = 0; t < 3000; ++t) {
    for (std::size_t i = 0; i < 20; ++i) {
      v[i] = (g() & 1) ? 1.0 : -1.0;
      v[20 + i] = (t % 2) ? -v[i] : ((g() & 1) ? 1.0 : -1.0);
    }
    const auto yv = nn::forward(f, v, 2);
    double s = 0;
    for (std::size_t i = 0; i < 18; ++i) s += std::pow(yv[i] - yv[18 + i], 2);
    worst = std::max(worst, std::sqrt(s));
  }
  EXPECT_GT(worst, 0);
  EXPECT_LE(worst, bound);
  std::printf("box: largest output distance found %.4f, bound %.4f\n", worst, bound);
  // the outputs' magnitude bound holds too
  const double mag = cryptotl::output_bound(f, {-1, 1, 0});
  for (double yy : y) EXPECT_LE(std::abs(yy), mag);
  // inputs on the unit sphere (L2-normalised features): the ball bound holds and is tighter
  for (std::size_t r = 0; r < 200; ++r) {
    double n = 0;
    for (std::size_t i = 0; i < 20; ++i) n += double(x[r * 20 + i]) * x[r * 20 + i];
    for (std::size_t i = 0; i < 20; ++i) x[r * 20 + i] = float(x[r * 20 + i] / std::sqrt(n));
  }
  const double ball = cryptotl::output_sensitivity(f, {0, 0, 1});
  EXPECT_LT(ball, bound);
  const std::vector<double> xs(x.begin(), x.end());
  const auto ys = nn::forward(f, xs, 200);
  for (std::size_t a = 0; a < 200; ++a)
    for (std::size_t b = a + 1; b < 200; ++b) {
      double s = 0;
      for (std::size_t i = 0; i < 18; ++i) s += std::pow(ys[a * 18 + i] - ys[b * 18 + i], 2);
      EXPECT_LE(std::sqrt(s), ball);
    }
  EXPECT_THROW(cryptotl::output_sensitivity(f, {1, -1, 0}), std::invalid_argument);
}

// The noise covers every block (a partly filled ciphertext's empty blocks too: the server cannot
// tell them apart) and the imaginary parts, not the padding slots of a block.
TEST(CryptoTL, NoiseUnderEncryptionHasTheCalibratedSpread) {
  Keys k;
  const auto net = random_network(16, 13);
  const cryptotl::EncryptedLowerNetwork enc_net(k.ctx, k.enc, net, k.ctx.user_top_level());
  const auto& pk = enc_net.packing();
  const auto gk = k.kg.galois_keys(k.sk, enc_net.rotations(), false);
  const std::size_t filled = pk.per_ciphertext / 3;
  const auto x = random_inputs(filled, 16, 14);
  const auto slots = pk.pack(x, 0, filled, k.ctx.max_slots());
  const auto ct = k.encryptor.encrypt(
      k.enc.encode(std::span<const double>(slots), k.ctx.user_top_level(), k.ctx.default_scale()));
  const auto y = enc_net.forward(k.ev, ct, k.rlk, gk);
  auto noisy = y;
  core::Prng prng(core::Seed{15});
  cryptotl::add_gaussian_noise(k.ev, k.enc, pk, noisy, 0.5, prng);
  const auto a = k.enc.decode(k.dec.decrypt(y)), b = k.enc.decode(k.dec.decrypt(noisy));
  for (bool empty_blocks : {false, true}) {
    double sum = 0, sq = 0, isq = 0, outside = 0;
    std::size_t n = 0;
    for (std::size_t r = empty_blocks ? filled : 0; r < (empty_blocks ? pk.per_ciphertext : filled);
         ++r)
      for (std::size_t i = 0; i < pk.block; ++i) {
        const auto e = b[r * pk.block + i] - a[r * pk.block + i];
        if (i < pk.out_dim) {
          sum += e.real();
          sq += e.real() * e.real();
          isq += e.imag() * e.imag();
          ++n;
        } else {
          outside = std::max(outside, std::abs(e));
        }
      }
    const double mean = sum / n, sd = std::sqrt(sq / n - mean * mean), isd = std::sqrt(isq / n);
    EXPECT_NEAR(sd, 0.5, 0.04) << n << (empty_blocks ? " empty blocks" : " samples");
    EXPECT_NEAR(isd, 0.5, 0.04) << "imaginary parts";
    EXPECT_NEAR(mean, 0, 0.04);
    EXPECT_LT(outside, 1e-4);  // padding slots get no noise
  }
}

TEST(CryptoTL, Metrics) {
  // 2 classes: tp 3, fn 1, fp 2, tn 4
  const std::vector<std::int64_t> t = {1, 1, 1, 1, 0, 0, 0, 0, 0, 0},
                                  p = {1, 1, 1, 0, 1, 1, 0, 0, 0, 0};
  const auto m = nn::classification_metrics(t, p, 2);
  EXPECT_DOUBLE_EQ(m.accuracy, 0.7);
  EXPECT_NEAR(m.f1, 2.0 * 3 / (2 * 3 + 2 + 1), 1e-12);
  // p_e = (4*5 + 6*5) / 100 = 0.5 -> kappa = (0.7 - 0.5) / 0.5
  EXPECT_NEAR(m.kappa, 0.4, 1e-12);
  // macro F1 over the classes that occur (class 3 never does)
  const auto mc = nn::classification_metrics({0, 1, 2, 2}, {0, 1, 2, 1}, 4);
  EXPECT_NEAR(mc.f1, (1.0 + 2.0 / 3 + 2.0 / 3) / 3, 1e-12);
  EXPECT_THROW(nn::classification_metrics(t, {1}, 2), std::invalid_argument);
  EXPECT_THROW(nn::classification_metrics({3}, {0}, 2), std::invalid_argument);
}
