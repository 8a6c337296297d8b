// Serialization: round trips of every object type, size of the packed format, and rejection of
// malformed input (wrong header fields, other contexts, truncation, bit flips) with
// SerializationError and nothing else.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <complex>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <numbers>
#include <sstream>
#include <string>
#include <vector>

#include "hetal/ckks/context.h"
#include "hetal/ckks/encoder.h"
#include "hetal/ckks/encryptor.h"
#include "hetal/ckks/evaluator.h"
#include "hetal/ckks/keygen.h"
#include "hetal/ckks/serialization.h"
#include "test_util.h"

using namespace hetal;
using namespace hetal::ckks;

namespace {
using hetal::testing::max_error;
using hetal::testing::rotate_plain;
using hetal::testing::Vec;

Vec random_values(core::Prng& p, std::size_t n) { return hetal::testing::random_unit_disk(p, n); }

constexpr double kTol = 1e-5;  // ~17 bits: far below the >= 22 bits the engine tests demand

struct Env {
  Context ctx;
  Encoder enc;
  KeyGenerator kg;
  SecretKey sk;
  PublicKey pk;
  RelinKey rlk;
  GaloisKeys gk;
  Encryptor encryptor;
  Decryptor dec;
  Evaluator ev;
  explicit Env(Parameters p)
      : ctx(std::move(p)),
        enc(ctx),
        kg(ctx, core::Seed{1}),
        sk(kg.secret_key()),
        pk(kg.public_key(sk)),
        rlk(kg.relin_key(sk)),
        gk(kg.galois_keys(sk, std::vector<long long>{1, 5, -3})),
        encryptor(ctx, pk, core::Seed{2}),
        dec(ctx, sk),
        ev(ctx) {}
  Ciphertext encrypt(const Vec& v, std::size_t level) {
    return encryptor.encrypt(enc.encode(v, level, ctx.default_scale()));
  }
  Vec decrypt(const Ciphertext& ct) { return enc.decode(dec.decrypt(ct)); }
};

Env& t13() {
  static Env env(Parameters::preset(Preset::T13));
  return env;
}

template <class X>
std::string to_bytes(const Context& ctx, const X& x) {
  std::ostringstream os(std::ios::binary);
  save(ctx, x, os);
  return os.str();
}

template <class X>
X from_bytes(const Context& ctx, const std::string& s) {
  std::istringstream is(s, std::ios::binary);
  return load<X>(ctx, is);
}

/// Runs f, expects SerializationError whose message contains `needle`.
template <class F>
::testing::AssertionResult ThrowsWith(F&& f, const std::string& needle) {
  try {
    f();
  } catch (const SerializationError& e) {
    if (std::string(e.what()).find(needle) != std::string::npos)
      return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "message '" << e.what() << "' lacks '" << needle << "'";
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "wrong exception type: " << e.what();
  }
  return ::testing::AssertionFailure() << "no exception";
}

void put_le(std::string& s, std::size_t off, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s[off + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
std::uint64_t get_le(const std::string& s, std::size_t off, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v |= std::uint64_t{static_cast<unsigned char>(s[off + i])} << (8 * i);
  return v;
}

void expect_same_switching_key(const rlwe::SwitchingKey& a, const rlwe::SwitchingKey& b) {
  EXPECT_EQ(a.nq, b.nq);
  EXPECT_EQ(a.seed, b.seed);
  ASSERT_EQ(a.b.size(), b.b.size());
  ASSERT_EQ(a.a.size(), b.a.size());
  for (std::size_t d = 0; d < a.b.size(); ++d) {
    EXPECT_TRUE(a.b[d] == b.b[d]) << "digit " << d;
    EXPECT_TRUE(a.a[d] == b.a[d]) << "digit " << d;
  }
}

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    path =
        std::filesystem::temp_directory_path() / ("hetal-ser-" + std::to_string(::getpid()) + "-" +
                                                  std::to_string(core::Prng::from_os().next_u64()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
  std::size_t entries() const {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(path)) ++n;
    return n;
  }
};
}  // namespace

// ------------------------------------------------------------------------------------------
// Round trips
// ------------------------------------------------------------------------------------------

TEST(Serialization, ParametersRoundTrip) {
  for (Preset preset : {Preset::T13, Preset::T14, Preset::B16_H192, Preset::TB13_INSECURE}) {
    const Parameters p = Parameters::preset(preset);
    std::ostringstream os;
    save_parameters(p, os);
    std::istringstream is(os.str());
    const Parameters q = load_parameters(is);
    EXPECT_EQ(q.name, p.name);
    EXPECT_EQ(q.log_n, p.log_n);
    EXPECT_EQ(q.q_primes, p.q_primes);
    EXPECT_EQ(q.p_primes, p.p_primes);
    EXPECT_EQ(q.dnum, p.dnum);
    EXPECT_EQ(q.secret, p.secret);
    EXPECT_EQ(q.sigma, p.sigma);
    EXPECT_EQ(q.log_scale, p.log_scale);
    EXPECT_EQ(q.user_q_count, p.user_q_count);
  }
  // A context built from loaded parameters has the same fingerprint.
  Env& e = t13();
  std::ostringstream os;
  save_parameters(e.ctx.params(), os);
  std::istringstream is(os.str());
  const Context c2(load_parameters(is));
  EXPECT_EQ(c2.fingerprint(), e.ctx.fingerprint());
}

TEST(Serialization, InsecureParametersStillNeedTheOptIn) {
  std::ostringstream os;
  save_parameters(Parameters::preset(Preset::TB13_INSECURE), os);
  std::istringstream is(os.str());
  Parameters p = load_parameters(is);
  EXPECT_THROW(Context{p}, std::invalid_argument);
  EXPECT_NO_THROW(Context(p, SecurityPolicy::allow_insecure));
}

TEST(Serialization, SecretKeyRoundTrip) {
  Env& e = t13();
  const SecretKey sk = from_bytes<SecretKey>(e.ctx, to_bytes(e.ctx, e.sk));
  EXPECT_EQ(sk.coeffs, e.sk.coeffs);
  EXPECT_TRUE(sk.ntt == e.sk.ntt);
  // N coefficients at 2 bits + header, checksum and count.
  EXPECT_EQ(to_bytes(e.ctx, e.sk).size(), 24 + 4 + e.ctx.n() / 4 + 8);
}

TEST(Serialization, PublicKeyRoundTripAndEncrypts) {
  Env& e = t13();
  const PublicKey pk = from_bytes<PublicKey>(e.ctx, to_bytes(e.ctx, e.pk));
  EXPECT_TRUE(pk.b == e.pk.b);
  EXPECT_TRUE(pk.a == e.pk.a);  // regenerated from the seed
  EXPECT_EQ(pk.seed, e.pk.seed);
  core::Prng p(core::Seed{11});
  const Vec v = random_values(p, e.ctx.max_slots());
  Encryptor enc2(e.ctx, pk, core::Seed{12});
  const Ciphertext ct = enc2.encrypt(e.enc.encode(v, e.ctx.max_level(), e.ctx.default_scale()));
  EXPECT_LT(max_error(e.decrypt(ct), v), kTol);
}

TEST(Serialization, RelinKeyRoundTripAndMultiplies) {
  Env& e = t13();
  const RelinKey rlk = from_bytes<RelinKey>(e.ctx, to_bytes(e.ctx, e.rlk));
  expect_same_switching_key(rlk.key, e.rlk.key);
  core::Prng p(core::Seed{13});
  const std::size_t n = e.ctx.max_slots();
  const Vec a = random_values(p, n), b = random_values(p, n);
  Ciphertext t = e.ev.multiply_relin(e.encrypt(a, 2), e.encrypt(b, 2), rlk);
  e.ev.rescale_inplace(t);
  Vec want(n);
  for (std::size_t i = 0; i < n; ++i) want[i] = a[i] * b[i];
  EXPECT_LT(max_error(e.decrypt(t), want), kTol);
  // A key generated below the top level.
  const RelinKey low = e.kg.relin_key(e.sk, 1);
  const RelinKey low2 = from_bytes<RelinKey>(e.ctx, to_bytes(e.ctx, low));
  expect_same_switching_key(low2.key, low.key);
}

TEST(Serialization, GaloisKeysRoundTripAndRotate) {
  Env& e = t13();
  const GaloisKeys gk = from_bytes<GaloisKeys>(e.ctx, to_bytes(e.ctx, e.gk));
  ASSERT_EQ(gk.keys.size(), e.gk.keys.size());
  for (const auto& [g, key] : e.gk.keys) {
    ASSERT_TRUE(gk.has(g));
    expect_same_switching_key(gk.keys.at(g), key);
  }
  core::Prng p(core::Seed{14});
  const Vec a = random_values(p, e.ctx.max_slots());
  const Ciphertext ca = e.encrypt(a, 2);
  for (long long k : {1LL, 5LL, -3LL}) {
    EXPECT_LT(max_error(e.decrypt(e.ev.rotate(ca, k, gk)), rotate_plain(a, k)), kTol) << k;
  }
  // Empty set.
  EXPECT_TRUE(from_bytes<GaloisKeys>(e.ctx, to_bytes(e.ctx, GaloisKeys{})).keys.empty());
}

TEST(Serialization, PlaintextRoundTrip) {
  Env& e = t13();
  core::Prng p(core::Seed{15});
  for (std::size_t level : {std::size_t{0}, std::size_t{2}}) {
    const Plaintext pt = e.enc.encode(random_values(p, 64), level, e.ctx.default_scale());
    const Plaintext q = from_bytes<Plaintext>(e.ctx, to_bytes(e.ctx, pt));
    EXPECT_TRUE(q.poly == pt.poly);
    EXPECT_EQ(q.scale, pt.scale);
    EXPECT_EQ(q.slots, pt.slots);
    EXPECT_EQ(q.level(), level);
  }
}

TEST(Serialization, CiphertextRoundTripDecrypts) {
  Env& e = t13();
  core::Prng p(core::Seed{16});
  const Vec v = random_values(p, e.ctx.max_slots());
  for (std::size_t level : {std::size_t{0}, std::size_t{1}, std::size_t{2}}) {
    const Ciphertext ct = e.encrypt(v, level);
    const Ciphertext c2 = from_bytes<Ciphertext>(e.ctx, to_bytes(e.ctx, ct));
    ASSERT_EQ(c2.size(), 2u);
    EXPECT_TRUE(c2.parts[0] == ct.parts[0]);
    EXPECT_TRUE(c2.parts[1] == ct.parts[1]);
    EXPECT_EQ(c2.scale, ct.scale);
    EXPECT_EQ(c2.slots, ct.slots);
    EXPECT_EQ(e.decrypt(c2), e.decrypt(ct));  // bit-identical input, identical output
    EXPECT_LT(max_error(e.decrypt(c2), v), kTol);
  }
  // Size-3 ciphertext (before relinearization), with a non-default scale.
  const Ciphertext t = e.ev.multiply(e.encrypt(v, 2), e.encrypt(v, 2));
  const Ciphertext t2 = from_bytes<Ciphertext>(e.ctx, to_bytes(e.ctx, t));
  ASSERT_EQ(t2.size(), 3u);
  for (std::size_t j = 0; j < 3; ++j) EXPECT_TRUE(t2.parts[j] == t.parts[j]);
  EXPECT_EQ(t2.scale, t.scale);
}

TEST(Serialization, SeededCiphertextRoundTripAndSize) {
  Env& e = t13();
  core::Prng p(core::Seed{17});
  const Vec v = random_values(p, e.ctx.max_slots());
  Encryptor sym(e.ctx, e.sk, core::Seed{18});
  const Plaintext pt = e.enc.encode(v, e.ctx.max_level(), e.ctx.default_scale());
  const SeededCiphertext s = sym.encrypt_seeded(pt);
  const std::string bytes = to_bytes(e.ctx, s);
  const SeededCiphertext s2 = from_bytes<SeededCiphertext>(e.ctx, bytes);
  EXPECT_TRUE(s2.c0 == s.c0);
  EXPECT_EQ(s2.seed, s.seed);
  EXPECT_EQ(s2.scale, s.scale);
  EXPECT_EQ(s2.slots, s.slots);
  const Ciphertext full = expand(e.ctx, s2);
  EXPECT_LT(max_error(e.decrypt(full), v), kTol);

  const std::size_t seeded = bytes.size(), normal = to_bytes(e.ctx, full).size();
  const std::size_t raw64 = 2 * (e.ctx.max_level() + 1) * e.ctx.n() * 8;
  std::cout << "[ sizes    ] T13 top-level ciphertext: packed " << normal << " bytes, seeded "
            << seeded << " bytes, raw 64-bit residues " << raw64 << " bytes\n";
  EXPECT_GT(seeded, normal * 45 / 100);
  EXPECT_LT(seeded, normal * 55 / 100);
  EXPECT_LT(normal, raw64);
  // Exactly ceil(log2 q_i) bits per residue: no slack beyond the fixed fields.
  std::size_t bits = 0;
  for (std::size_t i = 0; i <= e.ctx.max_level(); ++i)
    bits += std::bit_width(e.ctx.rns().q_primes()[i]);
  EXPECT_EQ(normal, 24 + 4 + 8 + 8 + 2 * (8 + bits * e.ctx.n() / 8) + 8);
}

TEST(Serialization, StreamOfSeveralObjects) {
  Env& e = t13();
  core::Prng p(core::Seed{19});
  const Ciphertext c1 = e.encrypt(random_values(p, 8), 1), c2 = e.encrypt(random_values(p, 8), 2);
  std::stringstream ss;
  save(e.ctx, c1, ss);
  save(e.ctx, e.pk, ss);
  save(e.ctx, c2, ss);
  EXPECT_TRUE(load_ciphertext(e.ctx, ss).parts[1] == c1.parts[1]);
  EXPECT_TRUE(load_public_key(e.ctx, ss).b == e.pk.b);
  EXPECT_TRUE(load_ciphertext(e.ctx, ss).parts[0] == c2.parts[0]);
}

// ------------------------------------------------------------------------------------------
// Rejection
// ------------------------------------------------------------------------------------------

TEST(Serialization, RejectsBadHeader) {
  Env& e = t13();
  core::Prng p(core::Seed{20});
  const std::string good = to_bytes(e.ctx, e.encrypt(random_values(p, 8), 1));
  auto load_ct = [&](const std::string& s) {
    return [&e, s] { (void)from_bytes<Ciphertext>(e.ctx, s); };
  };

  std::string s = good;
  s[0] = 'X';
  EXPECT_TRUE(ThrowsWith(load_ct(s), "magic"));
  s = good;
  put_le(s, 4, 2, 2);
  EXPECT_TRUE(ThrowsWith(load_ct(s), "version 2"));
  EXPECT_TRUE(ThrowsWith(load_ct(s), "supports version 1"));
  EXPECT_TRUE(ThrowsWith([&] { (void)from_bytes<Plaintext>(e.ctx, good); },
                         "expected Plaintext, found Ciphertext"));
  EXPECT_TRUE(ThrowsWith([&] { (void)from_bytes<RelinKey>(e.ctx, good); },
                         "expected RelinKey, found Ciphertext"));
  s = good;
  put_le(s, 6, 99, 2);
  EXPECT_TRUE(ThrowsWith(load_ct(s), "unknown type 99"));
  EXPECT_TRUE(ThrowsWith(
      [&] {
        std::istringstream is(good);
        (void)load_parameters(is);
      },
      "expected Parameters"));
  EXPECT_TRUE(ThrowsWith(load_ct(""), "truncated: expected 4 more bytes"));
  EXPECT_TRUE(
      ThrowsWith(load_ct(good.substr(0, good.size() - 100)), "truncated: expected 100 more bytes"));
  EXPECT_TRUE(
      ThrowsWith(load_ct(good.substr(0, good.size() - 3)), "truncated: expected 3 more bytes"));
  // Checksum itself corrupted.
  s = good;
  s.back() ^= 0x10;
  EXPECT_TRUE(ThrowsWith(load_ct(s), "checksum"));
}

TEST(Serialization, RejectsOtherContext) {
  Env& e = t13();
  static const Context t14(Parameters::preset(Preset::T14));
  core::Prng p(core::Seed{21});
  const std::string ct = to_bytes(e.ctx, e.encrypt(random_values(p, 8), 1));
  EXPECT_TRUE(ThrowsWith([&] { (void)from_bytes<Ciphertext>(t14, ct); },
                         "was made for a different parameter set"));
  const std::string rk = to_bytes(e.ctx, e.rlk);
  EXPECT_TRUE(ThrowsWith([&] { (void)from_bytes<RelinKey>(t14, rk); },
                         "was made for a different parameter set"));
  const std::string sk = to_bytes(e.ctx, e.sk);
  EXPECT_TRUE(ThrowsWith([&] { (void)from_bytes<SecretKey>(t14, sk); },
                         "was made for a different parameter set"));
  // Saving an object of one context under another is refused too.
  EXPECT_THROW(to_bytes(t14, e.rlk), SerializationError);
  EXPECT_THROW(to_bytes(t14, e.sk), SerializationError);
}

TEST(Serialization, RejectsAbsurdSizesWithoutAllocating) {
  Env& e = t13();
  core::Prng p(core::Seed{22});
  const std::string good = to_bytes(e.ctx, e.encrypt(random_values(p, 8), 2));
  auto load_ct = [&](const std::string& s) {
    return [&e, s] { (void)from_bytes<Ciphertext>(e.ctx, s); };
  };
  std::string s = good;
  put_le(s, 16, std::uint64_t{1} << 62, 8);  // payload length
  EXPECT_TRUE(ThrowsWith(load_ct(s), "exceeds the largest Ciphertext"));
  s = good;
  put_le(s, 24, 1000000, 4);  // part count
  EXPECT_TRUE(ThrowsWith(load_ct(s), "2 or 3 parts"));
  s = good;
  put_le(s, 44, 0xffffffffu, 4);  // Q limbs of part 0
  EXPECT_TRUE(ThrowsWith(load_ct(s), "Q limbs"));
  s = good;
  put_le(s, 48, 7, 4);  // P limbs of part 0
  EXPECT_TRUE(ThrowsWith(load_ct(s), "P limbs"));
  s = good;
  put_le(s, 36, 3, 8);  // slots
  EXPECT_TRUE(ThrowsWith(load_ct(s), "slot count"));
  s = good;
  put_le(s, 28, std::bit_cast<std::uint64_t>(std::numeric_limits<double>::infinity()), 8);
  EXPECT_TRUE(ThrowsWith(load_ct(s), "scale"));
  // Galois keys: a count beyond N.
  std::string g = to_bytes(e.ctx, e.gk);
  put_le(g, 24, 0x7fffffffu, 4);
  EXPECT_TRUE(ThrowsWith([&] { (void)from_bytes<GaloisKeys>(e.ctx, g); }, "Galois elements"));
  // Galois keys: an even element.
  g = to_bytes(e.ctx, e.gk);
  put_le(g, 28, get_le(g, 28, 8) + 1, 8);
  EXPECT_TRUE(ThrowsWith([&] { (void)from_bytes<GaloisKeys>(e.ctx, g); }, "not an odd number"));
  // Relin key: a digit count that does not match the context.
  std::string r = to_bytes(e.ctx, e.rlk);
  put_le(r, 28, get_le(r, 28, 4) + 1, 4);
  EXPECT_TRUE(ThrowsWith([&] { (void)from_bytes<RelinKey>(e.ctx, r); }, "digits"));
  // Parameters: an absurd prime count.
  std::ostringstream os;
  save_parameters(e.ctx.params(), os);
  std::string pa = os.str();
  const std::size_t name_len = get_le(pa, 24, 4);
  put_le(pa, 24 + 4 + name_len + 4, 0xffffffffu, 4);
  EXPECT_TRUE(ThrowsWith(
      [&] {
        std::istringstream is(pa);
        (void)load_parameters(is);
      },
      "prime count"));
}

TEST(Serialization, RejectsOutOfRangeResiduesAndTrailingGarbage) {
  Env& e = t13();
  core::Prng p(core::Seed{23});
  const std::string good = to_bytes(e.ctx, e.encrypt(random_values(p, 8), 2));
  std::string s = good;
  for (std::size_t i = 52; i < 60; ++i)
    s[i] = static_cast<char>(0xff);  // first residue = 2^b - 1 >= q_0
  EXPECT_TRUE(ThrowsWith([&] { (void)from_bytes<Ciphertext>(e.ctx, s); }, "out of range"));
  // Four extra bytes inside the declared payload, checksum recomputation not needed: the
  // trailing-bytes check fires first.
  s = good;
  s.insert(s.size() - 8, std::string(4, '\0'));
  put_le(s, 16, get_le(s, 16, 8) + 4, 8);
  EXPECT_TRUE(ThrowsWith([&] { (void)from_bytes<Ciphertext>(e.ctx, s); }, "trailing garbage: 4"));
  // Secret key with an invalid 2-bit code.
  std::string sk = to_bytes(e.ctx, e.sk);
  sk[28] = static_cast<char>(0xff);
  EXPECT_TRUE(ThrowsWith([&] { (void)from_bytes<SecretKey>(e.ctx, sk); },
                         "invalid secret key coefficient"));
}

TEST(Serialization, RejectsInvalidObjectsOnSave) {
  Env& e = t13();
  core::Prng p(core::Seed{24});
  Ciphertext ct = e.encrypt(random_values(p, 8), 2);
  Ciphertext bad = ct;
  bad.parts[0].limb(0)[5] = e.ctx.rns().q_primes()[0];  // not reduced
  EXPECT_THROW(to_bytes(e.ctx, bad), SerializationError);
  bad = ct;
  bad.slots = 6;
  EXPECT_THROW(to_bytes(e.ctx, bad), SerializationError);
  bad = ct;
  bad.parts.pop_back();
  EXPECT_THROW(to_bytes(e.ctx, bad), SerializationError);
  SecretKey sk = e.sk;
  sk.coeffs[0] = 2;
  EXPECT_THROW(to_bytes(e.ctx, sk), SerializationError);
}

namespace {
/// Every truncation and every single-bit flip must be refused with SerializationError.
void fuzz(const Context& ctx, const std::string& good, std::uint64_t seed,
          const std::function<void(const Context&, const std::string&)>& load) {
  core::Prng p(core::Seed{static_cast<std::uint8_t>(seed)});
  const std::size_t size = good.size();
  // Truncations: the boundaries around header, fields and checksum, then random lengths.
  std::vector<std::size_t> cuts = {0, 1, 3, 4, 23, 24, 25, 40, size - 9, size - 8, size - 1};
  while (cuts.size() < 311) cuts.push_back(static_cast<std::size_t>(p.uniform(size)));
  for (std::size_t cut : cuts) {
    EXPECT_THROW(load(ctx, good.substr(0, cut)), SerializationError) << "truncated to " << cut;
  }
  // Single-bit flips: every bit of the header and the checksum, then random ones.
  std::vector<std::size_t> flips;
  for (std::size_t bit = 0; bit < 8 * 24; ++bit) flips.push_back(bit);
  for (std::size_t bit = 8 * (size - 8); bit < 8 * size; ++bit) flips.push_back(bit);
  for (int i = 0; i < 300; ++i) flips.push_back(static_cast<std::size_t>(p.uniform(8 * size)));
  for (std::size_t bit : flips) {
    std::string s = good;
    s[bit / 8] = static_cast<char>(s[bit / 8] ^ (1 << (bit % 8)));
    EXPECT_THROW(load(ctx, s), SerializationError) << "bit " << bit << " flipped";
  }
  // And the untouched input loads.
  EXPECT_NO_THROW(load(ctx, good));
}
}  // namespace

TEST(Serialization, FuzzCiphertext) {
  Env& e = t13();
  core::Prng p(core::Seed{25});
  fuzz(e.ctx, to_bytes(e.ctx, e.encrypt(random_values(p, e.ctx.max_slots()), 2)), 26,
       [](const Context& c, const std::string& s) { (void)from_bytes<Ciphertext>(c, s); });
}

TEST(Serialization, FuzzRelinKey) {
  Env& e = t13();
  fuzz(e.ctx, to_bytes(e.ctx, e.rlk), 27,
       [](const Context& c, const std::string& s) { (void)from_bytes<RelinKey>(c, s); });
}

TEST(Serialization, FuzzOtherTypes) {
  Env& e = t13();
  std::ostringstream os;
  save_parameters(e.ctx.params(), os);
  const std::string params = os.str();
  // Fewer iterations for the rest: the same reader, different payload parsers.
  core::Prng p(core::Seed{28});
  const auto check = [&](const std::string& good, auto&& load) {
    for (int i = 0; i < 60; ++i) {
      EXPECT_THROW(load(good.substr(0, p.uniform(good.size()))), SerializationError);
      std::string s = good;
      const std::size_t bit = p.uniform(8 * s.size());
      s[bit / 8] = static_cast<char>(s[bit / 8] ^ (1 << (bit % 8)));
      EXPECT_THROW(load(s), SerializationError) << bit;
    }
  };
  check(params, [](const std::string& s) {
    std::istringstream is(s);
    (void)load_parameters(is);
  });
  check(to_bytes(e.ctx, e.sk),
        [&](const std::string& s) { (void)from_bytes<SecretKey>(e.ctx, s); });
  check(to_bytes(e.ctx, e.pk),
        [&](const std::string& s) { (void)from_bytes<PublicKey>(e.ctx, s); });
  check(to_bytes(e.ctx, e.gk),
        [&](const std::string& s) { (void)from_bytes<GaloisKeys>(e.ctx, s); });
  Encryptor sym(e.ctx, e.sk, core::Seed{29});
  const Plaintext pt = e.enc.encode(random_values(p, 16), 1, e.ctx.default_scale());
  check(to_bytes(e.ctx, pt), [&](const std::string& s) { (void)from_bytes<Plaintext>(e.ctx, s); });
  check(to_bytes(e.ctx, sym.encrypt_seeded(pt)),
        [&](const std::string& s) { (void)from_bytes<SeededCiphertext>(e.ctx, s); });
}

// ------------------------------------------------------------------------------------------
// Files
// ------------------------------------------------------------------------------------------

TEST(Serialization, FileRoundTripAndPermissions) {
  Env& e = t13();
  TempDir dir;
  core::Prng p(core::Seed{30});
  const Vec v = random_values(p, e.ctx.max_slots());
  const Ciphertext ct = e.encrypt(v, 2);

  save_file(e.ctx, ct, dir.file("ct.bin"));
  save_file(e.ctx, e.sk, dir.file("sk.bin"));
  save_file(e.ctx, e.pk, dir.file("pk.bin"));
  save_file(e.ctx, e.rlk, dir.file("rlk.bin"));
  save_file(e.ctx, e.gk, dir.file("gk.bin"));
  save_parameters_file(e.ctx.params(), dir.file("params.bin"));
  EXPECT_EQ(dir.entries(), 6u);  // no temporary files left behind

  const Context ctx2(load_parameters_file(dir.file("params.bin")));
  ASSERT_EQ(ctx2.fingerprint(), e.ctx.fingerprint());
  const SecretKey sk = load_file<SecretKey>(ctx2, dir.file("sk.bin"));
  EXPECT_EQ(sk.coeffs, e.sk.coeffs);
  const Ciphertext c2 = load_file<Ciphertext>(ctx2, dir.file("ct.bin"));
  EXPECT_TRUE(c2.parts[0] == ct.parts[0] && c2.parts[1] == ct.parts[1]);
  Encoder enc2(ctx2);
  EXPECT_LT(max_error(enc2.decode(Decryptor(ctx2, sk).decrypt(c2)), v), kTol);
  EXPECT_TRUE(load_file<PublicKey>(ctx2, dir.file("pk.bin")).a == e.pk.a);
  expect_same_switching_key(load_file<RelinKey>(ctx2, dir.file("rlk.bin")).key, e.rlk.key);
  EXPECT_EQ(load_file<GaloisKeys>(ctx2, dir.file("gk.bin")).keys.size(), e.gk.keys.size());

  namespace fs = std::filesystem;
  const auto perms = fs::status(dir.file("sk.bin")).permissions();
  EXPECT_EQ(perms & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
  struct stat st {};
  ASSERT_EQ(::stat(dir.file("sk.bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Overwriting an existing secret key file keeps it 0600; overwriting a world-readable file
  // with a secret key makes it 0600.
  save_file(e.ctx, e.sk, dir.file("sk.bin"));
  save_file(e.ctx, e.sk, dir.file("ct.bin"));
  ASSERT_EQ(::stat(dir.file("ct.bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(dir.entries(), 6u);
}

TEST(Serialization, FileErrors) {
  Env& e = t13();
  TempDir dir;
  const std::string missing = dir.file("does-not-exist.bin");
  EXPECT_TRUE(ThrowsWith([&] { (void)load_file<Ciphertext>(e.ctx, missing); }, missing));
  EXPECT_TRUE(ThrowsWith([&] { (void)load_file<Ciphertext>(e.ctx, missing); }, "cannot open"));
  EXPECT_TRUE(
      ThrowsWith([&] { (void)load_file<Ciphertext>(e.ctx, dir.path.string()); }, "directory"));
  // Saving into a missing directory names the path.
  const std::string nowhere = dir.file("no/such/dir/ct.bin");
  EXPECT_TRUE(ThrowsWith([&] { save_file(e.ctx, e.pk, nowhere); }, nowhere));
  // A failing save leaves no temporary file behind.
  SecretKey bad = e.sk;
  bad.coeffs.pop_back();
  EXPECT_THROW(save_file(e.ctx, bad, dir.file("sk.bin")), SerializationError);
  EXPECT_EQ(dir.entries(), 0u);
  // Errors inside a file name the file; bytes after the object are refused.
  save_file(e.ctx, e.pk, dir.file("pk.bin"));
  EXPECT_TRUE(ThrowsWith([&] { (void)load_file<RelinKey>(e.ctx, dir.file("pk.bin")); },
                         dir.file("pk.bin")));
  {
    std::ofstream out(dir.file("pk.bin"), std::ios::binary | std::ios::app);
    out << "x";
  }
  EXPECT_TRUE(ThrowsWith([&] { (void)load_file<PublicKey>(e.ctx, dir.file("pk.bin")); },
                         "after the object"));
  // Truncated file.
  std::filesystem::resize_file(dir.file("pk.bin"), 1000);
  EXPECT_TRUE(
      ThrowsWith([&] { (void)load_file<PublicKey>(e.ctx, dir.file("pk.bin")); }, "truncated"));
}

// SHA-256 of files as they are written and read: equal to the digest of the file's bytes, with
// the short seeks back that peeking at an object header takes, across the 1 MiB read buffer.
TEST(Serialization, FilesHashedWhileWrittenAndRead) {
  {
    core::Sha256 h;
    h.update("abc", 3);  // FIPS 180-4's first example
    EXPECT_EQ(h.finish_hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_THROW(h.update("x", 1), std::logic_error);
  }
  Env& e = t13();
  TempDir dir;
  core::Prng p(core::Seed{31});
  std::vector<Ciphertext> cts;
  for (int i = 0; i < 16; ++i) cts.push_back(e.encrypt(random_values(p, e.ctx.max_slots()), 2));
  const std::string path = dir.file("cts.bin");
  core::Sha256 written;
  detail::write_file_atomically(
      path, false,
      [&](std::ostream& out) {
        for (const auto& c : cts) save(e.ctx, c, out);
      },
      &written);
  const std::string digest = written.finish_hex();
  ASSERT_GT(std::filesystem::file_size(path), std::size_t{1} << 21);  // spans several buffers
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  core::Sha256 whole;
  whole.update(bytes.data(), bytes.size());
  EXPECT_EQ(digest, whole.finish_hex());
  core::Sha256 read;
  std::vector<Ciphertext> back;
  detail::read_file(
      path,
      [&](std::istream& in) {
        for (std::size_t i = 0; i < cts.size(); ++i) {
          const auto pos = in.tellg();
          char header[8];
          ASSERT_TRUE(in.read(header, 8));
          ASSERT_TRUE(in.seekg(pos));
          back.push_back(load<Ciphertext>(e.ctx, in));
        }
      },
      &read);
  EXPECT_EQ(read.finish_hex(), digest);
  ASSERT_EQ(back.size(), cts.size());
  for (std::size_t i = 0; i < cts.size(); ++i)
    EXPECT_TRUE(back[i].parts[0] == cts[i].parts[0] && back[i].parts[1] == cts[i].parts[1]);
  // One object file through save_file / load_file.
  core::Sha256 ws, rs;
  save_file(e.ctx, e.rlk, dir.file("rlk.bin"), &ws);
  (void)load_file<RelinKey>(e.ctx, dir.file("rlk.bin"), &rs);
  EXPECT_EQ(ws.finish_hex(), rs.finish_hex());
}
