// Versioned, little-endian binary serialization of parameters, keys, plaintexts and ciphertexts.
//
// ---------------------------------------------------------------------------------------------
// WIRE FORMAT, version 1
// ---------------------------------------------------------------------------------------------
// All integers are little-endian and written byte by byte (never a struct image); a double is
// its IEEE-754 bit pattern in a u64 ("f64"). Every object is
//
//   offset  size  field
//        0     4  magic "HETL"
//        4     2  u16 format version (1)
//        6     2  u16 object type: Parameters=1, SecretKey=2, PublicKey=3, RelinKey=4,
//                 GaloisKeys=5, Plaintext=6, Ciphertext=7, SeededCiphertext=8,
//                 SwitchingKey=9
//        8     8  u64 context fingerprint (Context::fingerprint(); 0 for Parameters)
//       16     8  u64 payload length in bytes
//       24     *  payload
//   24 + len   8  u64 checksum of bytes [0, 24 + len) (header and payload)
//
// The checksum absorbs the bytes as little-endian 64-bit words (the last one zero-padded),
// h = xorshift(odd_multiply(h ^ w)), then mixes in the total length with the MurmurHash3
// finalizer. Every step is a bijection of the state for a fixed input, so any corruption
// confined to one 8-byte word -- in particular every single bit flip -- changes the checksum.
// It is an integrity check against accidents, not a MAC: it does not authenticate anything.
//
// Payloads (counts are u32 unless noted):
//
//   Poly      u32 nq, u32 np, then the nq Q limbs and np P limbs in order. Limb i (prime
//             q_i = ctx.rns().mod_of(nq, i)) holds the N residues bit-packed at exactly
//             b_i = ceil(log2 q_i) bits each, LSB first, in ceil(N b_i / 8) bytes (each limb
//             starts on a byte boundary; padding bits are zero). The ring degree N is implied by
//             the context. Residues are in NTT form and must be < q_i.
//   Parameters
//             u32 name length (<= 256), name bytes; u32 log_n (10..17);
//             u32 |Q| (1..128), |Q| x u64 prime; u32 |P| (0..128), |P| x u64 prime;
//             u64 dnum; u8 secret kind (0 uniform ternary, 1 sparse ternary), u64 Hamming
//             weight; f64 sigma; u32 log_scale (two's complement i32); u64 user_q_count.
//             Only the explicit primes are stored: a loaded Parameters has empty q_bits/p_bits.
//   SecretKey u32 N, then the N ternary coefficients at 2 bits each, LSB first, 4 per byte
//             (0 -> 0, +1 -> 1, -1 -> 2; 3 is invalid). The NTT form is rebuilt on load.
//   PublicKey Poly b (nq = L, np = K), 32-byte seed. `a` is regenerated from the seed
//             (stream tag rlwe::kTagPublicKey, over Q and, if K > 0, P).
//   SwitchingKey (inside RelinKey and GaloisKeys)
//             u32 nq, u32 digit count D (must equal ctx.rns().digits(nq)), D x Poly b_d
//             (nq, np = K), 32-byte seed. a_d is regenerated (tag rlwe::kTagSwitchingKey + d).
//   RelinKey  SwitchingKey.
//   SwitchingKey (object 9)
//             SwitchingKey over the basis the caller names (the context's or a sub-basis).
//   GaloisKeys
//             u32 count (<= N), then count x (u64 Galois element, SwitchingKey); elements are
//             odd, < 2N and strictly increasing.
//   Plaintext u32 level, f64 scale (finite, > 0), u64 slots (power of two, <= N/2),
//             Poly (nq = level + 1, np = 0).
//   Ciphertext
//             u32 parts (2 or 3), f64 scale, u64 slots, parts x Poly (np = 0, all of the same
//             level <= ctx.max_level()).
//   SeededCiphertext
//             Poly c0 (np = 0), 32-byte seed, f64 scale, u64 slots. ckks::expand() rebuilds c1.
//
// Loading checks, in order: magic, version, object type, fingerprint, the declared payload
// length against the largest object of that type the context allows, then while parsing every
// declared count against the context before anything is allocated, truncation, residue ranges,
// trailing bytes inside the declared payload, and the checksum. Derived data (NTT form of the
// secret key, regenerated uniform polynomials) is computed only once the checksum has matched.
// Every failure throws SerializationError; nothing is allocated from an unchecked length.
// ---------------------------------------------------------------------------------------------
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "hetal/ckks/ciphertext.h"
#include "hetal/ckks/context.h"
#include "hetal/ckks/parameters.h"
#include "hetal/core/sha256.h"
#include "hetal/rlwe/keys.h"

namespace hetal::ckks {

class SerializationError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline constexpr std::uint16_t kSerializationVersion = 1;

enum class ObjectType : std::uint16_t {
  Parameters = 1,
  SecretKey = 2,
  PublicKey = 3,
  RelinKey = 4,
  GaloisKeys = 5,
  Plaintext = 6,
  Ciphertext = 7,
  SeededCiphertext = 8,
  SwitchingKey = 9,
};

/// The largest serialized object of type `t` that `ctx` allows (header, payload and checksum),
/// as the loader bounds it; for GaloisKeys, holding at most `keys` keys. Parameters need no
/// context (ctx may be null). Lets a receiver bound an upload before it stores a byte.
std::uint64_t max_object_bytes(const Context* ctx, ObjectType t, std::uint64_t keys = 0);

// --- streams ---
void save_parameters(const Parameters& params, std::ostream& out);
/// The caller builds a Context from the result; insecure sets are then refused by Context
/// unless SecurityPolicy::allow_insecure is passed.
Parameters load_parameters(std::istream& in);

void save(const Context& ctx, const rlwe::SecretKey& sk, std::ostream& out);
void save(const Context& ctx, const rlwe::PublicKey& pk, std::ostream& out);
void save(const Context& ctx, const rlwe::RelinKey& rlk, std::ostream& out);
void save(const Context& ctx, const rlwe::GaloisKeys& gk, std::ostream& out);
void save(const Context& ctx, const Plaintext& pt, std::ostream& out);
void save(const Context& ctx, const Ciphertext& ct, std::ostream& out);
void save(const Context& ctx, const SeededCiphertext& sct, std::ostream& out);

rlwe::SecretKey load_secret_key(const Context& ctx, std::istream& in);
rlwe::PublicKey load_public_key(const Context& ctx, std::istream& in);
rlwe::RelinKey load_relin_key(const Context& ctx, std::istream& in);
/// expand = false keeps the keys seeded (their uniform halves regenerated at each use).
rlwe::GaloisKeys load_galois_keys(const Context& ctx, std::istream& in, bool expand = true);
Plaintext load_plaintext(const Context& ctx, std::istream& in);
Ciphertext load_ciphertext(const Context& ctx, std::istream& in);
SeededCiphertext load_seeded_ciphertext(const Context& ctx, std::istream& in);
/// A bare switching key over `basis`: the context's own (ctx.rns()) or another basis of the
/// same ring, e.g. bootstrapping's encapsulation key over q0 * p0. Stamped with ctx's
/// fingerprint; the basis fixes the limb and digit counts checked on load.
void save_switching_key(const Context& ctx, const rns::RnsContext& basis,
                        const rlwe::SwitchingKey& key, std::ostream& out);
rlwe::SwitchingKey load_switching_key(const Context& ctx, const rns::RnsContext& basis,
                                      std::istream& in);

/// load_X for X one of the serializable types above.
template <class X>
X load(const Context& ctx, std::istream& in) {
  if constexpr (std::is_same_v<X, rlwe::SecretKey>) {
    return load_secret_key(ctx, in);
  } else if constexpr (std::is_same_v<X, rlwe::PublicKey>) {
    return load_public_key(ctx, in);
  } else if constexpr (std::is_same_v<X, rlwe::RelinKey>) {
    return load_relin_key(ctx, in);
  } else if constexpr (std::is_same_v<X, rlwe::GaloisKeys>) {
    return load_galois_keys(ctx, in);
  } else if constexpr (std::is_same_v<X, Plaintext>) {
    return load_plaintext(ctx, in);
  } else if constexpr (std::is_same_v<X, Ciphertext>) {
    return load_ciphertext(ctx, in);
  } else if constexpr (std::is_same_v<X, SeededCiphertext>) {
    return load_seeded_ciphertext(ctx, in);
  } else {
    static_assert(!sizeof(X), "not a serializable type");
  }
}

namespace detail {
/// Writes through `write` to path + ".tmp-<random>" (created with mode 0600 if owner_only),
/// flushes and checks the stream, fsyncs, then renames over `path`. The temporary file is
/// removed on any failure.
/// With `hash`, every byte written is also fed to it, in file order.
void write_file_atomically(const std::string& path, bool owner_only,
                           const std::function<void(std::ostream&)>& write,
                           core::Sha256* hash = nullptr);
/// Opens `path` (error naming it if it cannot), runs `read`, and refuses bytes left after the
/// object. Errors are prefixed with the path. With `hash`, the whole file is fed to it as it is
/// read (no second pass over the file).
void read_file(const std::string& path, const std::function<void(std::istream&)>& read,
               core::Sha256* hash = nullptr);
}  // namespace detail

// --- files ---
/// Atomic save (temporary file + rename). Secret keys are written with mode 0600.
/// `hash`: fed the file's bytes as they are written (see write_file_atomically).
template <class X>
void save_file(const Context& ctx, const X& x, const std::string& path,
               core::Sha256* hash = nullptr) {
  detail::write_file_atomically(
      path, std::is_same_v<X, rlwe::SecretKey>, [&](std::ostream& out) { save(ctx, x, out); },
      hash);
}

/// `hash`: fed the file's bytes as they are read (see read_file).
template <class X>
X load_file(const Context& ctx, const std::string& path, core::Sha256* hash = nullptr) {
  X x;
  detail::read_file(
      path, [&](std::istream& in) { x = load<X>(ctx, in); }, hash);
  return x;
}

void save_parameters_file(const Parameters& params, const std::string& path);
Parameters load_parameters_file(const std::string& path);

}  // namespace hetal::ckks
