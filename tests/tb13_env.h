// The TB13-INSECURE setup (the production chain's shape at N = 2^13) shared by the tests of
// the layers above bootstrapping: keys, encryptors and a bootstrapper, built once per binary.
#pragma once

#include "hetal/circuits/bootstrapping/bootstrapper.h"
#include "hetal/ckks/encryptor.h"
#include "hetal/ckks/keygen.h"

namespace hetal::test {

struct Tb13Env {
  ckks::Context ctx{ckks::Parameters::preset(ckks::Preset::TB13_INSECURE),
                    ckks::SecurityPolicy::allow_insecure};
  ckks::Encoder enc{ctx};
  ckks::Evaluator ev{ctx};
  ckks::KeyGenerator kg{ctx, core::Seed{41}};
  ckks::SecretKey sk = kg.secret_key();
  ckks::PublicKey pk = kg.public_key(sk);
  ckks::RelinKey rlk = kg.relin_key(sk);
  ckks::Encryptor encryptor{ctx, sk};
  ckks::Encryptor public_encryptor{ctx, pk};
  ckks::Decryptor dec{ctx, sk};
  circuits::Bootstrapper boot{ctx, enc, ev, rlk, {}};
  circuits::BootstrapKeys boot_keys = boot.generate_keys(kg, sk);
};

inline Tb13Env& tb13_env() {
  static Tb13Env e;
  return e;
}

}  // namespace hetal::test
