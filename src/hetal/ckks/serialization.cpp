#include "hetal/ckks/serialization.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <ios>
#include <istream>
#include <limits>
#include <ostream>
#include <set>
#include <streambuf>
#include <utility>
#include <vector>

#include "hetal/core/modarith.h"
#include "hetal/core/primes.h"
#include "hetal/rlwe/keygen.h"

namespace hetal::ckks {

namespace {

using core::u128;
using core::u64;
using Bytes = std::vector<unsigned char>;

constexpr unsigned char kMagic[4] = {'H', 'E', 'T', 'L'};
constexpr std::size_t kHeaderBytes = 24;
constexpr std::size_t kSeedBytes = 32;
constexpr std::size_t kMaxNameBytes = 256;
constexpr std::size_t kMaxPrimes = 128;  // per list (Q or P)
constexpr u64 kMaxU64 = std::numeric_limits<u64>::max();

const char* type_name(std::uint16_t t) {
  switch (static_cast<ObjectType>(t)) {
    case ObjectType::Parameters:
      return "Parameters";
    case ObjectType::SecretKey:
      return "SecretKey";
    case ObjectType::PublicKey:
      return "PublicKey";
    case ObjectType::RelinKey:
      return "RelinKey";
    case ObjectType::GaloisKeys:
      return "GaloisKeys";
    case ObjectType::Plaintext:
      return "Plaintext";
    case ObjectType::Ciphertext:
      return "Ciphertext";
    case ObjectType::SeededCiphertext:
      return "SeededCiphertext";
    case ObjectType::SwitchingKey:
      return "SwitchingKey";
  }
  return nullptr;
}
const char* type_name(ObjectType t) { return type_name(static_cast<std::uint16_t>(t)); }

std::string hex64(u64 v) {
  static const char* digits = "0123456789abcdef";
  std::string s = "0x";
  for (int i = 15; i >= 0; --i) s += digits[(v >> (4 * i)) & 0xf];
  return s;
}

u64 sat_add(u64 a, u64 b) { return a > kMaxU64 - b ? kMaxU64 : a + b; }
u64 sat_mul(u64 a, u64 b) { return (a != 0 && b > kMaxU64 / a) ? kMaxU64 : a * b; }

/// Clears secret scratch memory (volatile stores: not removed as dead stores before a free).
template <class T>
void wipe(std::vector<T>& v) {
  volatile unsigned char* p = reinterpret_cast<volatile unsigned char*>(v.data());
  for (std::size_t i = 0; i < v.size() * sizeof(T); ++i) p[i] = 0;
}

bool is_pow2(u64 v) { return v != 0 && (v & (v - 1)) == 0; }

// ------------------------------------------------------------------------------------------
// Checksum: word-at-a-time multiply / xorshift; every step is a bijection of the state for a
// fixed input word, so a change confined to one word always changes the result.
// ------------------------------------------------------------------------------------------
class Checksum {
 public:
  void update(const unsigned char* p, std::size_t n) {
    total_ += n;
    while (fill_ != 0 && n != 0) {
      buf_ |= u64{*p++} << (8 * fill_);
      --n;
      if (++fill_ == 8) {
        absorb(buf_);
        buf_ = 0;
        fill_ = 0;
      }
    }
    while (n >= 8) {
      u64 w = 0;
      for (int i = 0; i < 8; ++i) w |= u64{p[i]} << (8 * i);
      absorb(w);
      p += 8;
      n -= 8;
    }
    while (n != 0) {
      buf_ |= u64{*p++} << (8 * fill_);
      ++fill_;
      --n;
    }
  }
  u64 finish() const {
    u64 h = h_;
    if (fill_ != 0) h = step(h, buf_);
    h ^= total_;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
  }

 private:
  static u64 step(u64 h, u64 w) {
    h = (h ^ w) * 0x9fb21c651e98df25ull;  // odd multiplier: bijective
    return h ^ (h >> 29);                 // xorshift: bijective
  }
  void absorb(u64 w) { h_ = step(h_, w); }
  u64 h_ = 0x48455441'4c763031ull;  // "HETALv01"
  u64 buf_ = 0;
  unsigned fill_ = 0;
  u64 total_ = 0;
};

// ------------------------------------------------------------------------------------------
// Bit packing, LSB first.
// ------------------------------------------------------------------------------------------
std::size_t packed_bytes(std::size_t n, unsigned bits) { return (n * bits + 7) / 8; }

void pack(const u64* x, std::size_t n, unsigned bits, unsigned char* out) {
  u128 acc = 0;
  unsigned fill = 0;
  std::size_t o = 0;
  for (std::size_t k = 0; k < n; ++k) {
    acc |= static_cast<u128>(x[k]) << fill;
    fill += bits;
    if (fill >= 64) {
      const u64 w = static_cast<u64>(acc);
      for (int i = 0; i < 8; ++i) out[o++] = static_cast<unsigned char>(w >> (8 * i));
      acc >>= 64;
      fill -= 64;
    }
  }
  while (fill > 0) {
    out[o++] = static_cast<unsigned char>(acc);
    acc >>= 8;
    fill = fill >= 8 ? fill - 8 : 0;
  }
}

/// Returns false if padding bits are nonzero.
bool unpack(const unsigned char* in, std::size_t nbytes, std::size_t n, unsigned bits, u64* x) {
  const u64 mask = bits >= 64 ? kMaxU64 : (u64{1} << bits) - 1;
  u128 acc = 0;
  unsigned fill = 0;
  std::size_t pos = 0;
  for (std::size_t k = 0; k < n; ++k) {
    if (fill < bits) {
      const std::size_t take = std::min<std::size_t>(8, nbytes - pos);
      u64 w = 0;
      for (std::size_t j = 0; j < take; ++j) w |= u64{in[pos + j]} << (8 * j);
      pos += take;
      acc |= static_cast<u128>(w) << fill;
      fill += static_cast<unsigned>(8 * take);
    }
    x[k] = static_cast<u64>(acc) & mask;
    acc >>= bits;
    fill -= bits;
  }
  return acc == 0 && pos == nbytes;
}

// ------------------------------------------------------------------------------------------
// Sizes and limits.
// ------------------------------------------------------------------------------------------
unsigned prime_bits(u64 q) {
  return static_cast<unsigned>(std::bit_width(q));
}  // ceil(log2 q), q not a power of 2

u64 poly_bytes(const rns::RnsContext& rns, std::size_t nq, std::size_t np) {
  u64 s = 8;
  for (std::size_t i = 0; i < nq + np; ++i) {
    s = sat_add(s, packed_bytes(rns.n(), prime_bits(rns.mod_of(nq, i).value)));
  }
  return s;
}

u64 max_switching_key_bytes(const Context& ctx) {
  const std::size_t L = ctx.rns().q_count(), K = ctx.rns().p_count();
  return sat_add(8 + kSeedBytes, sat_mul(ctx.rns().digits(L), poly_bytes(ctx.rns(), L, K)));
}

u64 max_payload(const Context* ctx, ObjectType t) {
  if (t == ObjectType::Parameters) {
    return 4 + kMaxNameBytes + 4 + 2 * (4 + 8 * kMaxPrimes) + 8 + 1 + 8 + 8 + 4 + 8;
  }
  const std::size_t L = ctx->rns().q_count(), K = ctx->rns().p_count(), N = ctx->n();
  switch (t) {
    case ObjectType::SecretKey:
      return 4 + packed_bytes(N, 2);
    case ObjectType::PublicKey:
      return sat_add(poly_bytes(ctx->rns(), L, K), kSeedBytes);
    case ObjectType::RelinKey:
    case ObjectType::SwitchingKey:  // over the context's basis or a sub-basis of it
      return max_switching_key_bytes(*ctx);
    case ObjectType::GaloisKeys:
      return sat_add(4, sat_mul(N, sat_add(8, max_switching_key_bytes(*ctx))));
    case ObjectType::Plaintext:
      return sat_add(20, poly_bytes(ctx->rns(), L, 0));
    case ObjectType::Ciphertext:
      return sat_add(20, sat_mul(3, poly_bytes(ctx->rns(), L, 0)));
    case ObjectType::SeededCiphertext:
      return sat_add(poly_bytes(ctx->rns(), L, 0), kSeedBytes + 16);
    default:
      return 0;
  }
}

// ------------------------------------------------------------------------------------------
// Writer: counting pass (out == nullptr: validates and measures) and writing pass.
// ------------------------------------------------------------------------------------------
class Writer {
 public:
  Writer(std::ostream* out, ObjectType type) : out_(out), type_(type) {}
  bool counting() const { return out_ == nullptr; }
  [[noreturn]] void fail(const std::string& msg) const {
    throw SerializationError(std::string("cannot save ") + type_name(type_) + ": " + msg);
  }
  void bytes(const void* p, std::size_t n) {
    count_ += n;
    if (!out_) return;
    hash_.update(static_cast<const unsigned char*>(p), n);
    out_->write(static_cast<const char*>(p), static_cast<std::streamsize>(n));
  }
  void skip(u64 n) { count_ = sat_add(count_, n); }  // counting pass only
  void u8(std::uint8_t v) { le(v, 1); }
  void u16(std::uint16_t v) { le(v, 2); }
  void u32(std::uint32_t v) { le(v, 4); }
  void u64v(u64 v) { le(v, 8); }
  void f64(double d) { le(std::bit_cast<u64>(d), 8); }
  void count32(std::size_t v, const char* what) {
    if (v > 0xffffffffu) fail(std::string(what) + " does not fit the format");
    u32(static_cast<std::uint32_t>(v));
  }
  void seed(const core::Seed& s) { bytes(s.data(), s.size()); }
  u64 count() const { return count_; }
  u64 checksum() const { return hash_.finish(); }
  Bytes& scratch() { return scratch_; }

 private:
  void le(u64 v, int n) {
    unsigned char b[8];
    for (int i = 0; i < n; ++i) b[i] = static_cast<unsigned char>(v >> (8 * i));
    bytes(b, static_cast<std::size_t>(n));
  }
  std::ostream* out_;
  ObjectType type_;
  Checksum hash_;
  u64 count_ = 0;
  Bytes scratch_;
};

void write_poly(Writer& w, const rns::RnsContext& rns, const ring::RnsPoly& p,
                std::size_t expected_np, const char* what) {
  const std::size_t nq = p.nq(), np = p.np(), N = rns.n();
  if (w.counting()) {
    if (p.n() != N)
      w.fail(std::string(what) + " has ring degree " + std::to_string(p.n()) +
             ", the context has " + std::to_string(N));
    if (nq == 0 || nq > rns.q_count()) {
      w.fail(std::string(what) + " has " + std::to_string(nq) + " Q limbs, the context allows 1.." +
             std::to_string(rns.q_count()));
    }
    if (np != expected_np) {
      w.fail(std::string(what) + " has " + std::to_string(np) + " P limbs, expected " +
             std::to_string(expected_np));
    }
    for (std::size_t i = 0; i < nq + np; ++i) {
      const u64 q = rns.mod_of(nq, i).value;
      const u64* x = p.limb(i);
      for (std::size_t k = 0; k < N; ++k) {
        if (x[k] >= q) {
          w.fail(std::string(what) + ": residue " + std::to_string(x[k]) + " in limb " +
                 std::to_string(i) + " is not reduced modulo " + std::to_string(q));
        }
      }
    }
    w.skip(poly_bytes(rns, nq, np));
    return;
  }
  w.u32(static_cast<std::uint32_t>(nq));
  w.u32(static_cast<std::uint32_t>(np));
  for (std::size_t i = 0; i < nq + np; ++i) {
    const unsigned bits = prime_bits(rns.mod_of(nq, i).value);
    Bytes& buf = w.scratch();
    buf.assign(packed_bytes(N, bits), 0);
    pack(p.limb(i), N, bits, buf.data());
    w.bytes(buf.data(), buf.size());
  }
}

template <class Payload>
void write_object(std::ostream& out, ObjectType type, u64 fingerprint, Payload&& payload) {
  Writer counter(nullptr, type);
  payload(counter);  // validates the object and measures its payload
  const u64 len = counter.count();
  Writer w(&out, type);
  w.bytes(kMagic, 4);
  w.u16(kSerializationVersion);
  w.u16(static_cast<std::uint16_t>(type));
  w.u64v(fingerprint);
  w.u64v(len);
  payload(w);
  if (w.count() != kHeaderBytes + len)
    w.fail("internal error: payload size changed between passes");
  const u64 h = w.checksum();
  unsigned char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<unsigned char>(h >> (8 * i));
  out.write(reinterpret_cast<const char*>(b), 8);
  if (!out) w.fail("the output stream reported a write error");
}

template <class F>
void guarded_save(ObjectType type, F&& f) {
  try {
    f();
  } catch (const SerializationError&) {
    throw;
  } catch (const std::ios_base::failure& e) {
    throw SerializationError(std::string("cannot save ") + type_name(type) +
                             ": stream error: " + e.what());
  } catch (const std::logic_error& e) {
    throw SerializationError(std::string("cannot save ") + type_name(type) + ": " + e.what());
  }
}

// ------------------------------------------------------------------------------------------
// Reader: header, bounded payload, checksum.
// ------------------------------------------------------------------------------------------
class Reader {
 public:
  Reader(std::istream& in, ObjectType type) : in_(in), type_(type) {}
  [[noreturn]] void fail(const std::string& msg) const {
    throw SerializationError(std::string("cannot load ") + type_name(type_) + ": " + msg);
  }

  void header(u64 fingerprint, u64 max_len) {
    unsigned char m[4];
    bytes(m, 4);
    if (std::memcmp(m, kMagic, 4) != 0) {
      std::string found;
      for (unsigned char c : m) found += hex64(c).substr(16) + " ";
      fail("not a HETAL object (bad magic bytes " + found + "instead of \"HETL\")");
    }
    const std::uint16_t version = u16();
    if (version != kSerializationVersion) {
      fail("unsupported format version " + std::to_string(version) +
           " (this build supports version " + std::to_string(kSerializationVersion) + ")");
    }
    const std::uint16_t t = u16();
    if (t != static_cast<std::uint16_t>(type_)) {
      const char* n = type_name(t);
      fail(std::string("wrong object type: expected ") + type_name(type_) + ", found " +
           (n ? std::string(n) : "unknown type " + std::to_string(t)));
    }
    const u64 fp = u64v();
    if (fp != fingerprint) {
      if (type_ == ObjectType::Parameters) {
        fail("a Parameters object must carry fingerprint 0, found " + hex64(fp));
      }
      fail("the object was made for a different parameter set (fingerprint " + hex64(fp) +
           ", this context has " + hex64(fingerprint) + ")");
    }
    const u64 len = u64v();
    if (len > max_len) {
      fail("declared payload of " + std::to_string(len) + " bytes exceeds the largest " +
           type_name(type_) + " this context allows (" + std::to_string(max_len) + " bytes)");
    }
    remaining_ = len;
    in_payload_ = true;
  }

  void bytes(void* dst, std::size_t n) {
    if (in_payload_ && n > remaining_) {
      fail("corrupt: the contents run past the declared payload length (" + std::to_string(n) +
           " bytes needed, " + std::to_string(remaining_) + " left)");
    }
    in_.read(static_cast<char*>(dst), static_cast<std::streamsize>(n));
    const std::size_t got = static_cast<std::size_t>(std::max<std::streamsize>(in_.gcount(), 0));
    if (got != n) {
      u64 missing = n - got;
      if (in_payload_) missing = sat_add(missing, sat_add(remaining_ - n, 8));
      fail("truncated: expected " + std::to_string(missing) + " more bytes");
    }
    hash_.update(static_cast<const unsigned char*>(dst), n);
    if (in_payload_) remaining_ -= n;
  }
  std::uint8_t u8() { return static_cast<std::uint8_t>(le(1)); }
  std::uint16_t u16() { return static_cast<std::uint16_t>(le(2)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(le(4)); }
  u64 u64v() { return le(8); }
  double f64() { return std::bit_cast<double>(le(8)); }
  core::Seed seed() {
    core::Seed s{};
    bytes(s.data(), s.size());
    return s;
  }
  Bytes& scratch() { return scratch_; }

  /// Trailing bytes inside the payload, then the checksum.
  void finish() {
    if (remaining_ != 0) {
      fail("trailing garbage: " + std::to_string(remaining_) +
           " unread bytes inside the declared payload");
    }
    in_payload_ = false;
    const u64 want = hash_.finish();
    unsigned char b[8];
    in_.read(reinterpret_cast<char*>(b), 8);
    const std::streamsize got = in_.gcount();
    if (got != 8) fail("truncated: expected " + std::to_string(8 - got) + " more bytes (checksum)");
    u64 have = 0;
    for (int i = 0; i < 8; ++i) have |= u64{b[i]} << (8 * i);
    if (have != want) {
      fail("checksum mismatch (stored " + hex64(have) + ", computed " + hex64(want) +
           "): the data is corrupted");
    }
  }

 private:
  u64 le(int n) {
    unsigned char b[8];
    bytes(b, static_cast<std::size_t>(n));
    u64 v = 0;
    for (int i = 0; i < n; ++i) v |= u64{b[i]} << (8 * i);
    return v;
  }
  std::istream& in_;
  ObjectType type_;
  Checksum hash_;
  u64 remaining_ = 0;
  bool in_payload_ = false;
  Bytes scratch_;
};

/// A polynomial with `expected_np` P limbs and, if required_nq != 0, exactly that many Q limbs.
ring::RnsPoly read_poly(Reader& r, const rns::RnsContext& rns, std::size_t expected_np,
                        std::size_t required_nq, const char* what) {
  const std::size_t L = rns.q_count(), N = rns.n();
  const std::uint32_t nq = r.u32();
  const std::uint32_t np = r.u32();
  if (nq == 0 || nq > L) {
    r.fail(std::string(what) + " declares " + std::to_string(nq) +
           " Q limbs; this context allows 1.." + std::to_string(L));
  }
  if (required_nq != 0 && nq != required_nq) {
    r.fail(std::string(what) + " has " + std::to_string(nq) + " Q limbs, expected " +
           std::to_string(required_nq));
  }
  if (np != expected_np) {
    r.fail(std::string(what) + " declares " + std::to_string(np) + " P limbs, expected " +
           std::to_string(expected_np));
  }
  ring::RnsPoly p(N, nq, np);  // at most (L + K) N words: bounded by the context
  Bytes& buf = r.scratch();
  for (std::size_t i = 0; i < std::size_t{nq} + np; ++i) {
    const u64 q = rns.mod_of(nq, i).value;
    const unsigned bits = prime_bits(q);
    buf.resize(packed_bytes(N, bits));
    r.bytes(buf.data(), buf.size());
    u64* x = p.limb(i);
    if (!unpack(buf.data(), buf.size(), N, bits, x)) {
      r.fail(std::string(what) + ": nonzero padding bits in limb " + std::to_string(i));
    }
    for (std::size_t k = 0; k < N; ++k) {
      if (x[k] >= q) {
        r.fail(std::string(what) + ": residue " + std::to_string(x[k]) + " at limb " +
               std::to_string(i) + ", coefficient " + std::to_string(k) +
               " is out of range (modulus " + std::to_string(q) + ")");
      }
    }
  }
  return p;
}

template <class Parse>
auto read_object(std::istream& in, ObjectType type, const Context* ctx, Parse&& parse) {
  Reader r(in, type);
  r.header(ctx ? ctx->fingerprint() : 0, max_payload(ctx, type));
  auto raw = parse(r);
  r.finish();
  return raw;
}

template <class F>
auto guarded_load(ObjectType type, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const SerializationError&) {
    throw;
  } catch (const std::ios_base::failure& e) {
    throw SerializationError(std::string("cannot load ") + type_name(type) +
                             ": stream error: " + e.what());
  } catch (const std::logic_error& e) {
    throw SerializationError(std::string("cannot load ") + type_name(type) +
                             ": invalid object: " + e.what());
  }
}

// ------------------------------------------------------------------------------------------
// Shared pieces: metadata, switching keys.
// ------------------------------------------------------------------------------------------
void check_scale_slots(const Context& ctx, double scale, u64 slots,
                       const std::function<void(const std::string&)>& fail) {
  if (!std::isfinite(scale) || !(scale > 0))
    fail("scale " + std::to_string(scale) + " is not finite and positive");
  if (!is_pow2(slots) || slots > ctx.max_slots()) {
    fail("slot count " + std::to_string(slots) +
         " is not a power of two <= " + std::to_string(ctx.max_slots()));
  }
}

void write_switching_key(Writer& w, const rns::RnsContext& rns, const rlwe::SwitchingKey& key) {
  const std::size_t K = rns.p_count();
  if (w.counting()) {
    if (K == 0) w.fail("the context has no special primes, so it has no switching keys");
    if (key.nq == 0 || key.nq > rns.q_count()) {
      w.fail("switching key covers " + std::to_string(key.nq) + " Q limbs; the context allows 1.." +
             std::to_string(rns.q_count()));
    }
    if (key.b.size() != rns.digits(key.nq)) {
      w.fail("switching key has " + std::to_string(key.b.size()) + " digits, expected " +
             std::to_string(rns.digits(key.nq)));
    }
  }
  w.count32(key.nq, "switching key level");
  w.count32(key.b.size(), "digit count");
  for (const auto& b : key.b) {
    if (w.counting() && b.nq() != key.nq)
      w.fail("switching key digit with the wrong number of limbs");
    write_poly(w, rns, b, K, "switching key polynomial");
  }
  w.seed(key.seed);
}

rlwe::SwitchingKey read_switching_key(Reader& r, const rns::RnsContext& rns) {
  const std::size_t K = rns.p_count(), L = rns.q_count();
  if (K == 0) r.fail("the context has no special primes, so it has no switching keys");
  rlwe::SwitchingKey key;
  const std::uint32_t nq = r.u32();
  if (nq == 0 || nq > L) {
    r.fail("switching key declares " + std::to_string(nq) + " Q limbs; this context allows 1.." +
           std::to_string(L));
  }
  const std::uint32_t digits = r.u32();
  if (digits != rns.digits(nq)) {
    r.fail("switching key declares " + std::to_string(digits) + " digits; at " +
           std::to_string(nq) + " limbs this context has " + std::to_string(rns.digits(nq)));
  }
  key.nq = nq;
  key.b.reserve(digits);
  for (std::uint32_t d = 0; d < digits; ++d)
    key.b.push_back(read_poly(r, rns, K, nq, "switching key polynomial"));
  key.seed = r.seed();
  return key;
}

/// After the checksum: regenerate the uniform parts.
void expand_switching_key(const rns::RnsContext& rns, rlwe::SwitchingKey& key) {
  key.a.resize(key.b.size());
  for (std::size_t d = 0; d < key.b.size(); ++d) {
    rlwe::sample_uniform_seeded(rns, key.seed, rlwe::kTagSwitchingKey + d, key.a[d], key.nq, true);
  }
}

void check_galois(const Context& ctx, u64 g, const std::function<void(const std::string&)>& fail) {
  if ((g & 1) == 0 || g >= 2 * u64{ctx.n()}) {
    fail("Galois element " + std::to_string(g) +
         " is not an odd number below 2N = " + std::to_string(2 * ctx.n()));
  }
}

void check_prime(u64 q, int log_n, const std::function<void(const std::string&)>& fail) {
  const u64 m = u64{2} << log_n;
  if (q >= (u64{1} << core::kMaxPrimeBits) || q < (u64{1} << (log_n + 2)) || q % m != 1 ||
      !core::is_prime(q)) {
    fail("modulus " + std::to_string(q) + " is not an NTT prime for N = 2^" +
         std::to_string(log_n) + " in the supported size range");
  }
}

}  // namespace

std::uint64_t max_object_bytes(const Context* ctx, ObjectType t, std::uint64_t keys) {
  if (t != ObjectType::Parameters && !ctx)
    throw std::invalid_argument("max_object_bytes: this object type needs a context");
  const u64 payload = t == ObjectType::GaloisKeys
                          ? sat_add(4, sat_mul(keys, sat_add(8, max_switching_key_bytes(*ctx))))
                          : max_payload(ctx, t);
  return sat_add(24 + 8, payload);
}

// ============================================================================================
// Parameters
// ============================================================================================
void save_parameters(const Parameters& p, std::ostream& out) {
  guarded_save(ObjectType::Parameters, [&] {
    write_object(out, ObjectType::Parameters, 0, [&](Writer& w) {
      if (w.counting()) {
        if (p.log_n < 10 || p.log_n > 17) w.fail("log N must be in 10..17");
        if (p.name.size() > kMaxNameBytes)
          w.fail("name longer than " + std::to_string(kMaxNameBytes) + " bytes");
        if (p.q_primes.empty())
          w.fail("the parameters have no explicit Q primes (call materialize() first)");
        if (p.q_primes.size() > kMaxPrimes || p.p_primes.size() > kMaxPrimes) {
          w.fail("more than " + std::to_string(kMaxPrimes) + " primes in a list");
        }
        if (!p.p_bits.empty() && p.p_primes.empty()) w.fail("P primes not materialized");
      }
      w.count32(p.name.size(), "name");
      w.bytes(p.name.data(), p.name.size());
      w.u32(static_cast<std::uint32_t>(p.log_n));
      w.count32(p.q_primes.size(), "Q prime count");
      for (u64 q : p.q_primes) w.u64v(q);
      w.count32(p.p_primes.size(), "P prime count");
      for (u64 q : p.p_primes) w.u64v(q);
      w.u64v(p.dnum);
      w.u8(static_cast<std::uint8_t>(p.secret.kind));
      w.u64v(p.secret.hamming_weight);
      w.f64(p.sigma);
      w.u32(static_cast<std::uint32_t>(p.log_scale));
      w.u64v(p.user_q_count);
    });
  });
}

Parameters load_parameters(std::istream& in) {
  return guarded_load(ObjectType::Parameters, [&] {
    return read_object(in, ObjectType::Parameters, nullptr, [&](Reader& r) {
      auto fail = [&](const std::string& m) { r.fail(m); };
      Parameters p;
      const std::uint32_t name_len = r.u32();
      if (name_len > kMaxNameBytes) {
        r.fail("name of " + std::to_string(name_len) + " bytes exceeds the limit of " +
               std::to_string(kMaxNameBytes));
      }
      p.name.resize(name_len);
      r.bytes(p.name.data(), name_len);
      const std::uint32_t log_n = r.u32();
      if (log_n < 10 || log_n > 17)
        r.fail("log N = " + std::to_string(log_n) + " is outside 10..17");
      p.log_n = static_cast<int>(log_n);
      std::set<u64> seen;
      auto read_primes = [&](std::vector<u64>& out, const char* which, std::uint32_t min_count) {
        const std::uint32_t count = r.u32();
        if (count < min_count || count > kMaxPrimes) {
          r.fail(std::string(which) + " prime count " + std::to_string(count) + " is outside " +
                 std::to_string(min_count) + ".." + std::to_string(kMaxPrimes));
        }
        out.resize(count);
        for (auto& q : out) {
          q = r.u64v();
          check_prime(q, p.log_n, fail);
          if (!seen.insert(q).second) r.fail("prime " + std::to_string(q) + " appears twice");
        }
      };
      read_primes(p.q_primes, "Q", 1);
      read_primes(p.p_primes, "P", 0);
      p.dnum = r.u64v();
      if (p.dnum > p.q_primes.size())
        r.fail("dnum " + std::to_string(p.dnum) + " exceeds the number of Q primes");
      const std::uint8_t kind = r.u8();
      if (kind > 1) r.fail("unknown secret distribution " + std::to_string(kind));
      p.secret.kind = static_cast<SecretDistribution::Kind>(kind);
      const u64 h = r.u64v();
      if (h > p.n() || (p.secret.kind == SecretDistribution::Kind::sparse_ternary && h == 0)) {
        r.fail("Hamming weight " + std::to_string(h) +
               " is invalid for N = " + std::to_string(p.n()));
      }
      p.secret.hamming_weight = h;
      p.sigma = r.f64();
      if (!std::isfinite(p.sigma) || !(p.sigma > 0) || p.sigma > 100) {
        r.fail("error width sigma = " + std::to_string(p.sigma) + " is outside (0, 100]");
      }
      const auto log_scale = static_cast<std::int32_t>(r.u32());
      if (log_scale < 1 || log_scale > 60)
        r.fail("log scale " + std::to_string(log_scale) + " is outside 1..60");
      p.log_scale = log_scale;
      p.user_q_count = r.u64v();
      if (p.user_q_count > p.q_primes.size()) r.fail("user_q_count exceeds the number of Q primes");
      return p;
    });
  });
}

// ============================================================================================
// Secret key
// ============================================================================================
void save(const Context& ctx, const rlwe::SecretKey& sk, std::ostream& out) {
  guarded_save(ObjectType::SecretKey, [&] {
    write_object(out, ObjectType::SecretKey, ctx.fingerprint(), [&](Writer& w) {
      const std::size_t N = ctx.n();
      if (sk.coeffs.size() != N) {
        w.fail("secret key has " + std::to_string(sk.coeffs.size()) +
               " coefficients, the context has N = " + std::to_string(N));
      }
      w.count32(N, "N");
      if (w.counting()) {
        for (auto c : sk.coeffs) {
          if (c < -1 || c > 1) w.fail("secret key coefficients must be ternary");
        }
        w.skip(packed_bytes(N, 2));
        return;
      }
      std::vector<u64> codes(N);
      for (std::size_t k = 0; k < N; ++k)
        codes[k] = sk.coeffs[k] == 0 ? 0 : (sk.coeffs[k] == 1 ? 1 : 2);
      Bytes buf(packed_bytes(N, 2));
      pack(codes.data(), N, 2, buf.data());
      w.bytes(buf.data(), buf.size());
      wipe(codes);
      wipe(buf);
    });
  });
}

rlwe::SecretKey load_secret_key(const Context& ctx, std::istream& in) {
  return guarded_load(ObjectType::SecretKey, [&] {
    std::vector<std::int8_t> coeffs = read_object(in, ObjectType::SecretKey, &ctx, [&](Reader& r) {
      const std::size_t N = ctx.n();
      const std::uint32_t n = r.u32();
      if (n != N)
        r.fail("secret key of " + std::to_string(n) +
               " coefficients, the context has N = " + std::to_string(N));
      Bytes buf(packed_bytes(N, 2));
      r.bytes(buf.data(), buf.size());
      std::vector<u64> codes(N);
      if (!unpack(buf.data(), buf.size(), N, 2, codes.data())) r.fail("nonzero padding bits");
      std::vector<std::int8_t> c(N);
      for (std::size_t k = 0; k < N; ++k) {
        if (codes[k] == 3)
          r.fail("invalid secret key coefficient code at index " + std::to_string(k));
        c[k] = codes[k] == 2 ? std::int8_t{-1} : static_cast<std::int8_t>(codes[k]);
      }
      wipe(codes);
      wipe(buf);
      return c;
    });
    return rlwe::KeyGenerator(ctx.rns(), ctx.params().secret, ctx.params().sigma)
        .secret_key_from(std::move(coeffs));
  });
}

// ============================================================================================
// Public key
// ============================================================================================
void save(const Context& ctx, const rlwe::PublicKey& pk, std::ostream& out) {
  guarded_save(ObjectType::PublicKey, [&] {
    write_object(out, ObjectType::PublicKey, ctx.fingerprint(), [&](Writer& w) {
      if (w.counting() && pk.b.nq() != ctx.rns().q_count()) {
        w.fail("public key b must cover all " + std::to_string(ctx.rns().q_count()) + " Q limbs");
      }
      write_poly(w, ctx.rns(), pk.b, ctx.rns().p_count(), "public key b");
      w.seed(pk.seed);
    });
  });
}

rlwe::PublicKey load_public_key(const Context& ctx, std::istream& in) {
  return guarded_load(ObjectType::PublicKey, [&] {
    rlwe::PublicKey pk = read_object(in, ObjectType::PublicKey, &ctx, [&](Reader& r) {
      rlwe::PublicKey k;
      k.b = read_poly(r, ctx.rns(), ctx.rns().p_count(), ctx.rns().q_count(), "public key b");
      k.seed = r.seed();
      return k;
    });
    rlwe::sample_uniform_seeded(ctx.rns(), pk.seed, rlwe::kTagPublicKey, pk.a, ctx.rns().q_count(),
                                ctx.rns().p_count() > 0);
    return pk;
  });
}

// ============================================================================================
// Relinearization and Galois keys
// ============================================================================================
void save(const Context& ctx, const rlwe::RelinKey& rlk, std::ostream& out) {
  guarded_save(ObjectType::RelinKey, [&] {
    write_object(out, ObjectType::RelinKey, ctx.fingerprint(),
                 [&](Writer& w) { write_switching_key(w, ctx.rns(), rlk.key); });
  });
}

rlwe::RelinKey load_relin_key(const Context& ctx, std::istream& in) {
  return guarded_load(ObjectType::RelinKey, [&] {
    rlwe::RelinKey rlk;
    rlk.key = read_object(in, ObjectType::RelinKey, &ctx,
                          [&](Reader& r) { return read_switching_key(r, ctx.rns()); });
    expand_switching_key(ctx.rns(), rlk.key);
    return rlk;
  });
}

void save_switching_key(const Context& ctx, const rns::RnsContext& basis,
                        const rlwe::SwitchingKey& key, std::ostream& out) {
  guarded_save(ObjectType::SwitchingKey, [&] {
    write_object(out, ObjectType::SwitchingKey, ctx.fingerprint(),
                 [&](Writer& w) { write_switching_key(w, basis, key); });
  });
}

rlwe::SwitchingKey load_switching_key(const Context& ctx, const rns::RnsContext& basis,
                                      std::istream& in) {
  return guarded_load(ObjectType::SwitchingKey, [&] {
    rlwe::SwitchingKey key = read_object(in, ObjectType::SwitchingKey, &ctx,
                                         [&](Reader& r) { return read_switching_key(r, basis); });
    expand_switching_key(basis, key);
    return key;
  });
}

void save(const Context& ctx, const rlwe::GaloisKeys& gk, std::ostream& out) {
  guarded_save(ObjectType::GaloisKeys, [&] {
    write_object(out, ObjectType::GaloisKeys, ctx.fingerprint(), [&](Writer& w) {
      if (w.counting() && gk.keys.size() > ctx.n()) w.fail("more Galois keys than Galois elements");
      w.count32(gk.keys.size(), "key count");
      for (const auto& [g, key] : gk.keys) {
        if (w.counting()) check_galois(ctx, g, [&](const std::string& m) { w.fail(m); });
        w.u64v(g);
        write_switching_key(w, ctx.rns(), key);
      }
    });
  });
}

rlwe::GaloisKeys load_galois_keys(const Context& ctx, std::istream& in, bool expand) {
  return guarded_load(ObjectType::GaloisKeys, [&] {
    rlwe::GaloisKeys gk = read_object(in, ObjectType::GaloisKeys, &ctx, [&](Reader& r) {
      rlwe::GaloisKeys keys;
      const std::uint32_t count = r.u32();
      if (count > ctx.n()) {
        r.fail("declares " + std::to_string(count) +
               " keys; a context with N = " + std::to_string(ctx.n()) + " has at most " +
               std::to_string(ctx.n()) + " Galois elements");
      }
      u64 prev = 0;
      for (std::uint32_t j = 0; j < count; ++j) {
        const u64 g = r.u64v();
        check_galois(ctx, g, [&](const std::string& m) { r.fail(m); });
        if (j > 0 && g <= prev)
          r.fail("Galois elements are not strictly increasing (duplicate or out of order)");
        prev = g;
        keys.keys.emplace(g, read_switching_key(r, ctx.rns()));
      }
      return keys;
    });
    if (expand)
      for (auto& [g, key] : gk.keys) expand_switching_key(ctx.rns(), key);
    return gk;
  });
}

// ============================================================================================
// Plaintexts and ciphertexts
// ============================================================================================
void save(const Context& ctx, const Plaintext& pt, std::ostream& out) {
  guarded_save(ObjectType::Plaintext, [&] {
    write_object(out, ObjectType::Plaintext, ctx.fingerprint(), [&](Writer& w) {
      if (w.counting()) {
        if (pt.poly.nq() == 0 || pt.level() > ctx.max_level())
          w.fail("plaintext level outside the chain");
        check_scale_slots(ctx, pt.scale, pt.slots, [&](const std::string& m) { w.fail(m); });
      }
      w.count32(pt.level(), "level");
      w.f64(pt.scale);
      w.u64v(pt.slots);
      write_poly(w, ctx.rns(), pt.poly, 0, "plaintext polynomial");
    });
  });
}

Plaintext load_plaintext(const Context& ctx, std::istream& in) {
  return guarded_load(ObjectType::Plaintext, [&] {
    return read_object(in, ObjectType::Plaintext, &ctx, [&](Reader& r) {
      auto fail = [&](const std::string& m) { r.fail(m); };
      Plaintext pt;
      const std::uint32_t level = r.u32();
      if (level > ctx.max_level()) {
        r.fail("level " + std::to_string(level) + " is above the chain's top " +
               std::to_string(ctx.max_level()));
      }
      pt.scale = r.f64();
      const u64 slots = r.u64v();
      check_scale_slots(ctx, pt.scale, slots, fail);
      pt.slots = slots;
      pt.poly = read_poly(r, ctx.rns(), 0, std::size_t{level} + 1, "plaintext polynomial");
      return pt;
    });
  });
}

void save(const Context& ctx, const Ciphertext& ct, std::ostream& out) {
  guarded_save(ObjectType::Ciphertext, [&] {
    write_object(out, ObjectType::Ciphertext, ctx.fingerprint(), [&](Writer& w) {
      if (w.counting()) {
        if (ct.parts.size() < 2 || ct.parts.size() > 3) {
          w.fail("a ciphertext has 2 or 3 parts, this one has " + std::to_string(ct.parts.size()));
        }
        for (const auto& p : ct.parts) {
          if (p.nq() != ct.parts[0].nq()) w.fail("ciphertext parts at different levels");
        }
        check_scale_slots(ctx, ct.scale, ct.slots, [&](const std::string& m) { w.fail(m); });
      }
      w.u32(static_cast<std::uint32_t>(ct.parts.size()));
      w.f64(ct.scale);
      w.u64v(ct.slots);
      for (const auto& p : ct.parts) write_poly(w, ctx.rns(), p, 0, "ciphertext part");
    });
  });
}

Ciphertext load_ciphertext(const Context& ctx, std::istream& in) {
  return guarded_load(ObjectType::Ciphertext, [&] {
    return read_object(in, ObjectType::Ciphertext, &ctx, [&](Reader& r) {
      Ciphertext ct;
      const std::uint32_t parts = r.u32();
      if (parts < 2 || parts > 3)
        r.fail("a ciphertext has 2 or 3 parts, this one declares " + std::to_string(parts));
      ct.scale = r.f64();
      const u64 slots = r.u64v();
      check_scale_slots(ctx, ct.scale, slots, [&](const std::string& m) { r.fail(m); });
      ct.slots = slots;
      ct.parts.reserve(parts);
      for (std::uint32_t j = 0; j < parts; ++j) {
        ct.parts.push_back(
            read_poly(r, ctx.rns(), 0, j == 0 ? 0 : ct.parts[0].nq(), "ciphertext part"));
      }
      return ct;
    });
  });
}

void save(const Context& ctx, const SeededCiphertext& sct, std::ostream& out) {
  guarded_save(ObjectType::SeededCiphertext, [&] {
    write_object(out, ObjectType::SeededCiphertext, ctx.fingerprint(), [&](Writer& w) {
      if (w.counting())
        check_scale_slots(ctx, sct.scale, sct.slots, [&](const std::string& m) { w.fail(m); });
      write_poly(w, ctx.rns(), sct.c0, 0, "seeded ciphertext c0");
      w.seed(sct.seed);
      w.f64(sct.scale);
      w.u64v(sct.slots);
    });
  });
}

SeededCiphertext load_seeded_ciphertext(const Context& ctx, std::istream& in) {
  return guarded_load(ObjectType::SeededCiphertext, [&] {
    return read_object(in, ObjectType::SeededCiphertext, &ctx, [&](Reader& r) {
      SeededCiphertext s;
      s.c0 = read_poly(r, ctx.rns(), 0, 0, "seeded ciphertext c0");
      s.seed = r.seed();
      s.scale = r.f64();
      const u64 slots = r.u64v();
      check_scale_slots(ctx, s.scale, slots, [&](const std::string& m) { r.fail(m); });
      s.slots = slots;
      return s;
    });
  });
}

// ============================================================================================
// Files
// ============================================================================================
namespace {

/// Unbuffered-to-the-caller output on a POSIX file descriptor (the one created with O_EXCL),
/// so the file is never reopened by name.
class FdOutBuf : public std::streambuf {
 public:
  explicit FdOutBuf(int fd, core::Sha256* hash = nullptr)
      : fd_(fd), hash_(hash), buf_(std::size_t{1} << 16) {
    setp(buf_.data(), buf_.data() + buf_.size());
  }
  int error() const { return err_; }

 protected:
  int_type overflow(int_type ch) override {
    if (!drain()) return traits_type::eof();
    if (!traits_type::eq_int_type(ch, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(ch);
      pbump(1);
    }
    return traits_type::not_eof(ch);
  }
  int sync() override { return drain() ? 0 : -1; }

 private:
  bool drain() {
    if (err_ != 0) return false;
    const char* p = pbase();
    std::size_t n = static_cast<std::size_t>(pptr() - pbase());
    if (hash_) hash_->update(p, n);
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        err_ = errno;
        return false;
      }
      p += w;
      n -= static_cast<std::size_t>(w);
    }
    setp(buf_.data(), buf_.data() + buf_.size());
    return true;
  }
  int fd_;
  core::Sha256* hash_;
  std::vector<char> buf_;
  int err_ = 0;
};

/// Input from a POSIX file descriptor in 1 MiB reads, each also fed to `hash` if given, so the
/// hash sees the file once, in order. Seeks reach back at most kKeep bytes before the read
/// position (enough to peek at an object header and return to it).
class FdInBuf : public std::streambuf {
 public:
  FdInBuf(int fd, core::Sha256* hash) : fd_(fd), hash_(hash), buf_(kKeep + (std::size_t{1} << 20)) {
    setg(buf_.data(), buf_.data(), buf_.data());
  }
  int error() const { return err_; }

 protected:
  int_type underflow() override {
    if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
    if (err_ != 0) return traits_type::eof();
    // Keep the last bytes read in front of the new ones for short seeks back.
    const std::size_t have = static_cast<std::size_t>(egptr() - eback());
    const std::size_t keep = std::min(kKeep, have);
    std::memmove(buf_.data(), egptr() - keep, keep);
    start_ += static_cast<std::streamoff>(have - keep);
    char* const dst = buf_.data() + keep;
    ssize_t r;
    do {
      r = ::read(fd_, dst, buf_.size() - keep);
    } while (r < 0 && errno == EINTR);
    setg(buf_.data(), dst, dst + std::max<ssize_t>(r, 0));
    if (r <= 0) {
      if (r < 0) err_ = errno;
      return traits_type::eof();
    }
    if (hash_) hash_->update(dst, static_cast<std::size_t>(r));
    return traits_type::to_int_type(*gptr());
  }
  pos_type seekoff(off_type off, std::ios_base::seekdir dir, std::ios_base::openmode) override {
    if (dir == std::ios_base::cur) return seekpos(start_ + (gptr() - eback()) + off, {});
    if (dir == std::ios_base::beg) return seekpos(off, {});
    return pos_type(off_type(-1));
  }
  pos_type seekpos(pos_type pos, std::ios_base::openmode) override {
    const off_type rel = off_type(pos) - start_;
    if (rel < 0 || rel > egptr() - eback()) return pos_type(off_type(-1));
    setg(eback(), eback() + rel, egptr());
    return pos;
  }

 private:
  static constexpr std::size_t kKeep = 4096;
  int fd_;
  core::Sha256* hash_;
  std::vector<char> buf_;
  std::streamoff start_ = 0;  // file offset of eback()
  int err_ = 0;
};

/// Closes a file descriptor when it goes out of scope.
struct FdCloser {
  int fd;
  ~FdCloser() { ::close(fd); }
};

std::string random_suffix() {
  const core::Seed s = core::os_seed();
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < 8; ++i) {
    out += digits[s[i] >> 4];
    out += digits[s[i] & 0xf];
  }
  return out;
}

std::string errno_text(int e) { return std::strerror(e); }

}  // namespace

namespace detail {

void write_file_atomically(const std::string& path, bool owner_only,
                           const std::function<void(std::ostream&)>& write, core::Sha256* hash) {
  const std::string tmp = path + ".tmp-" + random_suffix();
  const int fd =
      ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, owner_only ? 0600 : 0666);
  if (fd < 0) {
    throw SerializationError("cannot save '" + path + "': cannot create '" + tmp +
                             "': " + errno_text(errno));
  }
  bool fd_open = true;
  auto fail = [&](const std::string& msg) {
    if (fd_open) ::close(fd);
    fd_open = false;
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw SerializationError("cannot save '" + path + "': " + msg);
  };
  try {
    if (owner_only && ::fchmod(fd, 0600) != 0) fail("cannot set mode 0600: " + errno_text(errno));
    FdOutBuf buf(fd, hash);
    std::ostream out(&buf);
    write(out);
    out.flush();
    if (!out)
      fail(buf.error() ? "write error: " + errno_text(buf.error()) : std::string("write error"));
    if (::fsync(fd) != 0) fail("fsync failed: " + errno_text(errno));
    fd_open = false;
    if (::close(fd) != 0) fail("close failed: " + errno_text(errno));
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) fail("cannot rename '" + tmp + "' to it: " + ec.message());
  } catch (const SerializationError& e) {
    if (fd_open) ::close(fd);
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    const std::string prefix = "cannot save '" + path + "'";
    if (std::string(e.what()).rfind(prefix, 0) == 0) throw;
    throw SerializationError(prefix + ": " + e.what());
  } catch (...) {
    if (fd_open) ::close(fd);
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
}

void read_file(const std::string& path, const std::function<void(std::istream&)>& read,
               core::Sha256* hash) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw SerializationError("cannot open '" + path + "' for reading: it is a directory");
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw SerializationError("cannot open '" + path + "' for reading: " + errno_text(errno));
  }
  const FdCloser closer{fd};
  FdInBuf buf(fd, hash);
  std::istream in(&buf);
  try {
    read(in);
  } catch (const SerializationError& e) {
    if (buf.error()) {
      throw SerializationError("'" + path + "': read error: " + errno_text(buf.error()));
    }
    throw SerializationError("'" + path + "': " + e.what());
  }
  if (in.peek() != std::char_traits<char>::eof()) {
    throw SerializationError("'" + path + "': unexpected bytes after the object");
  }
  if (buf.error()) {
    throw SerializationError("'" + path + "': read error: " + errno_text(buf.error()));
  }
}

}  // namespace detail

void save_parameters_file(const Parameters& params, const std::string& path) {
  detail::write_file_atomically(path, false,
                                [&](std::ostream& out) { save_parameters(params, out); });
}

Parameters load_parameters_file(const std::string& path) {
  Parameters p;
  detail::read_file(path, [&](std::istream& in) { p = load_parameters(in); });
  return p;
}

}  // namespace hetal::ckks
