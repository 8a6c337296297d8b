// libFuzzer harness: every parser of uploaded objects. The first byte picks the parser, the
// rest is the object: the service's object-chain check (store.h: check_objects) for each
// upload kind, then the CKKS loaders the server role runs on what passed (serialization.h),
// under small insecure parameters. Anything may be refused; nothing may crash, hang or leak.
#include <cstdint>
#include <sstream>
#include <string>

#include "hetal/ckks/serialization.h"
#include "hetal/protocol/grpc/store.h"

namespace {
const hetal::ckks::Context& context() {
  static const hetal::ckks::Context ctx(
      hetal::ckks::Parameters::preset(hetal::ckks::Preset::TB13_INSECURE),
      hetal::ckks::SecurityPolicy::allow_insecure);
  return ctx;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hetal;
  if (size < 1) return 0;
  const std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  const ckks::Context& ctx = context();
  std::istringstream in(body);
  try {
    switch (data[0] % 10) {
      case 0: {
        const auto kind = static_cast<v1::ObjectKind>(1 + (size % 8));
        protocol::grpc_transport::check_objects(in, kind, body.size());
        break;
      }
      case 1:
        (void)ckks::load_parameters(in);
        break;
      case 2:
        (void)ckks::load_public_key(ctx, in);
        break;
      case 3:
        (void)ckks::load_relin_key(ctx, in);
        break;
      case 4:
        (void)ckks::load_galois_keys(ctx, in, false);
        break;
      case 5:
        (void)ckks::load_ciphertext(ctx, in);
        break;
      case 6:
        (void)ckks::load_seeded_ciphertext(ctx, in);
        break;
      case 7:
        (void)ckks::load_plaintext(ctx, in);
        break;
      case 8:
        (void)ckks::load_secret_key(ctx, in);
        break;
      case 9:
        (void)ckks::load_switching_key(ctx, ctx.rns(), in);
        break;
    }
  } catch (const protocol::grpc_transport::ServiceError&) {
  } catch (const ckks::SerializationError&) {
  }
  return 0;
}
