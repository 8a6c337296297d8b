// Keys for exactly one training shape, made in process (bench_train, trace_train): the context,
// the secret key and everything the server's trainer needs.
#pragma once

#include "bench_util.h"
#include "hetal/ckks/encryptor.h"
#include "hetal/ckks/keygen.h"
#include "hetal/train/encrypted_trainer.h"

namespace hetal::bench {

class TrainerKeys {
  Clock::time_point start_ = Clock::now();  // first: the members below are timed from here

 public:
  ckks::Context ctx;
  ckks::Encoder enc{ctx};
  ckks::Evaluator ev{ctx};
  ckks::KeyGenerator kg{ctx};
  ckks::SecretKey sk;
  ckks::PublicKey pk;
  ckks::RelinKey rlk;
  ckks::GaloisKeys gk;
  circuits::Bootstrapper boot;
  circuits::BootstrapKeys bk;
  double keygen_seconds = 0;  ///< secret, public, relinearization, Galois and bootstrapping keys

  static circuits::BootstrapParameters boot_params(bool seeded_keys) {
    circuits::BootstrapParameters p;
    p.seeded_keys = seeded_keys;
    return p;
  }
  /// B16-H192 (128-bit), or TB13-INSECURE for quick checks.
  static ckks::Context context(bool insecure) {
    using namespace hetal::ckks;
    return Context(Parameters::preset(insecure ? Preset::TB13_INSECURE : Preset::B16_H192),
                   insecure ? SecurityPolicy::allow_insecure : SecurityPolicy::require_128);
  }
  /// `shape_of` turns the context's slot count into the trainer's shape.
  /// seeded_keys: bootstrapping's Galois keys without their uniform halves (the default).
  template <class ShapeOf>
  TrainerKeys(bool insecure, ShapeOf shape_of, bool seeded_keys = true)
      : ctx(context(insecure)),
        sk(kg.secret_key()),
        pk(kg.public_key(sk)),
        rlk(kg.relin_key(sk)),
        gk(kg.galois_keys(sk, train::EncryptedTrainer::rotations(shape_of(ctx.max_slots())), true,
                          ctx.params().user_top_level())),
        boot(ctx, enc, ev, rlk, boot_params(seeded_keys)),
        bk(boot.generate_keys(kg, sk)),
        keygen_seconds(seconds_since(start_)) {}
};

}  // namespace hetal::bench
