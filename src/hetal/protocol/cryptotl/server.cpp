// CryptoTL's server role (transfer.h): the private lower network on the client's inputs.
#include <chrono>
#include <cmath>
#include <set>

#include "hetal/cryptotl/encrypted_network.h"
#include "hetal/protocol/bundle.h"
#include "hetal/protocol/cryptotl/transfer.h"

namespace hetal::protocol::cryptotl {

using detail::fail;

v1::TransferResult run_forward(const nn::LowerNetwork& net, const v1::TransferSpec& spec,
                               const ForwardFiles& files, const ForwardOptions& o) {
  if (spec.format() != kFormat || spec.version() != kVersion)
    fail("not a version-1 " + std::string(kFormat) + " request");
  if (spec.dim() != net.dim)
    fail("the inputs have dimension " + std::to_string(spec.dim()) + ", the lower network takes " +
         std::to_string(net.dim));
  const ckks::Context ctx = detail::open_context(files.params, o.insecure);
  const ckks::Encoder enc(ctx);
  const ckks::Evaluator ev(ctx);
  // Only evaluation keys: a secret key has another object type and is refused by the loaders.
  core::Sha256 id;
  const auto rlk = detail::load_key<rlwe::RelinKey>(ctx, files.relin, &id);
  const auto gk = detail::load_key<rlwe::GaloisKeys>(ctx, files.galois, &id);
  if (id.finish_hex() != spec.key_id())
    fail("the key files do not hash to the request's key id " + spec.key_id());
  if (ctx.user_top_level() < hetal::cryptotl::kDepth)
    fail("the parameters have " + std::to_string(ctx.user_top_level()) +
         " levels, the lower network needs " + std::to_string(hetal::cryptotl::kDepth));
  // The client chooses the parameters, the server pays for them: the diagonals are encoded at
  // N and kDepth levels only (inputs above are dropped to it), and N is capped.
  if (ctx.params().log_n > kMaxLogN)
    fail("the parameters have N = 2^" + std::to_string(ctx.params().log_n) +
         "; the lower network runs at N <= 2^" + std::to_string(kMaxLogN));
  std::unique_ptr<hetal::cryptotl::EncryptedLowerNetwork> enc_net;
  try {
    enc_net = std::make_unique<hetal::cryptotl::EncryptedLowerNetwork>(ctx, enc, net,
                                                                       hetal::cryptotl::kDepth);
    enc_net->check_keys(gk);
  } catch (const std::invalid_argument& e) {
    fail(e.what());
  }
  const auto& pk = enc_net->packing();
  v1::TransferResult r;
  r.set_format(kFormat);
  r.set_version(kVersion);
  r.set_key_id(spec.key_id());
  r.set_dim(static_cast<std::uint32_t>(net.dim));
  r.set_out_dim(static_cast<std::uint32_t>(net.out_dim()));
  r.set_samples_per_ciphertext(static_cast<std::uint32_t>(pk.per_ciphertext));
  r.set_block(static_cast<std::uint32_t>(pk.block));
  double sigma = 0;
  if (o.dp) {
    const auto& d = *o.dp;
    try {
      const double sens = hetal::cryptotl::output_sensitivity(
          nn::fuse(net), {d.input_lo, d.input_hi, d.input_radius});
      sigma = hetal::cryptotl::gaussian_sigma(d.epsilon, d.delta, sens);
      // The noise must fit below q0 / 2 at the output's scale, or it wraps and decrypts to junk.
      const double headroom =
          static_cast<double>(ctx.params().q_primes[0]) / (2 * ctx.default_scale());
      if (12 * sigma > headroom / 2)
        fail("DP noise of sigma " + std::to_string(sigma) +
             " does not fit the parameters' output "
             "range of +-" +
             std::to_string(headroom) + " (raise epsilon)");
      auto* m = r.mutable_dp();
      m->set_epsilon(d.epsilon);
      m->set_delta(d.delta);
      m->set_sensitivity(sens);
      m->set_sigma(sigma);
      m->set_input_lo(d.input_lo);
      m->set_input_hi(d.input_hi);
      m->set_input_radius(d.input_radius);
    } catch (const std::invalid_argument& e) {
      fail(e.what());
    }
  }
  core::Prng noise = core::Prng::from_os();
  const auto t0 = std::chrono::steady_clock::now();  // evaluation only: keys are loaded
  std::set<std::string> names;
  for (const auto& s : spec.splits()) {
    check_split_name(s.name());
    if (!names.insert(s.name()).second) fail("split '" + s.name() + "' twice in the request");
  }
  if (spec.splits_size() != static_cast<int>(files.splits.size()))
    fail("the request's splits do not match its files");
  for (std::size_t k = 0; k < files.splits.size(); ++k) {
    const auto& s = files.splits[k];
    const auto& want = spec.splits(static_cast<int>(k));
    if (s.name != want.name()) fail("the request's splits do not match its files");
    if (s.rows == 0) fail("split '" + s.name + "' has no rows");
    const std::size_t n = pk.ciphertexts(s.rows);
    if (want.ciphertexts() != n)
      fail("split '" + s.name + "': " + std::to_string(want.ciphertexts()) + " ciphertexts for " +
           std::to_string(s.rows) + " rows, expected " + std::to_string(n));
    // The outputs name the inputs they were computed from (the client checks it on decrypt).
    if (!fs::is_regular_file(s.inputs))
      fail(s.inputs.string() + ": missing (encrypt the split first)");
    core::Sha256 in_hash;  // fed as the file is read: no second pass over it
    auto cts = detail::load_cts(ctx, s.inputs, n, &in_hash);
    if (in_hash.finish_hex() != want.inputs().sha256())
      fail(s.inputs.string() + ": does not hash to the request's inputs digest");
    std::vector<ckks::Ciphertext> outs;
    try {
      outs = enc_net->forward_all(ev, cts, rlk, gk);
    } catch (const std::invalid_argument& e) {
      fail(s.inputs.string() + ": " + e.what());
    }
    if (o.dp)
      for (auto& ct : outs) hetal::cryptotl::add_gaussian_noise(ev, enc, pk, ct, sigma, noise);
    detail::save_cts(ctx, outs, s.outputs);
    auto* rs = r.add_splits();
    rs->set_name(s.name);
    rs->set_rows(s.rows);
    rs->set_ciphertexts(static_cast<std::uint32_t>(n));
    *rs->mutable_inputs() = want.inputs();
  }
  r.set_seconds(detail::since(t0));
  return r;
}

v1::TransferResult server_forward(const fs::path& model, const fs::path& bundle,
                                  const ForwardOptions& o) {
  nn::LowerNetwork net;
  try {
    net = nn::load_lower_network(model.string());
  } catch (const std::invalid_argument& e) {
    fail(e.what());
  }
  if (fs::exists(bundle / "secret.key"))
    fail(bundle.string() + ": holds a secret key; the server refuses it (keep it with the client)");
  v1::TransferSpec spec;
  detail::read_message(bundle / "transfer.json", spec);
  if (spec.splits_size() == 0) fail(bundle.string() + "/transfer.json: no splits");
  ForwardFiles files{bundle / "params.bin", bundle / "relin.key", bundle / "galois.key", {}};
  for (const auto& s : spec.splits()) {
    check_split_name(s.name());
    files.splits.push_back({s.name(), s.rows(), bundle / ("inputs-" + s.name() + ".cts"),
                            bundle / ("outputs-" + s.name() + ".cts.new")});
  }
  // A failed run leaves the previous outputs and result as they were; a successful one replaces
  // them together (result.json removed first and written last, so it never describes outputs
  // other than its own).
  v1::TransferResult r;
  try {
    r = run_forward(net, spec, files, o);
  } catch (...) {
    for (const auto& s : files.splits) fs::remove(s.outputs);
    throw;
  }
  fs::remove(bundle / "result.json");
  for (const auto& s : files.splits) fs::rename(s.outputs, bundle / ("outputs-" + s.name + ".cts"));
  detail::write_message(bundle / "result.json", r);
  return r;
}

}  // namespace hetal::protocol::cryptotl
