// CryptoTL's client role over the directory transport (transfer.h).
#include <algorithm>
#include <fstream>

#include "hetal/ckks/encryptor.h"
#include "hetal/ckks/keygen.h"
#include "hetal/cryptotl/encrypted_network.h"
#include "hetal/data/npy.h"
#include "hetal/protocol/bundle.h"
#include "hetal/protocol/cryptotl/transfer.h"
#include "hetal/train/data_io.h"

namespace hetal::protocol::cryptotl {

using detail::fail;

namespace {

v1::TransferSpec read_spec(const fs::path& p) {
  v1::TransferSpec s;
  detail::read_message(p, s);
  if (s.format() != kFormat || s.version() != kVersion)
    fail(p.string() + ": not a version-1 " + kFormat + " file");
  return s;
}

void copy_atomically(const fs::path& from, const fs::path& to) {
  const fs::path tmp = to.string() + ".tmp";
  fs::copy_file(from, tmp, fs::copy_options::overwrite_existing);
  fs::rename(tmp, to);
}

}  // namespace

void check_split_name(const std::string& name) {
  const bool ok =
      !name.empty() && name.size() <= 32 && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
      });
  if (!ok) fail("split name '" + name + "': use 1 to 32 of a-z, 0-9, _ and -");
}

void client_setup(const fs::path& client, std::size_t dim, const ckks::Parameters& params,
                  bool insecure) {
  const fs::path state = client / "client.json";
  if (fs::exists(state)) {
    const auto s = read_spec(state);
    if (s.dim() != dim)
      fail(client.string() + ": holds keys for inputs of dimension " + std::to_string(s.dim()) +
           ", not " + std::to_string(dim) + " (use another client folder)");
    return;
  }
  fs::create_directories(client);
  ckks::save_parameters_file(params, (client / "params.bin").string());
  const ckks::Context ctx = detail::open_context(client / "params.bin", insecure);
  const ckks::Encoder enc(ctx);
  (void)hetal::cryptotl::Packing(dim, ctx.max_slots());  // the dimension fits the slots
  ckks::KeyGenerator kg(ctx);
  const auto sk = kg.secret_key();
  ckks::save_file(ctx, sk, (client / "secret.key").string());
  core::Sha256 id;
  ckks::save_file(ctx, kg.relin_key(sk), (client / "relin.key").string(), &id);
  const auto steps = hetal::cryptotl::required_rotations(ctx, enc, dim);
  ckks::save_file(ctx, kg.galois_keys(sk, steps, false), (client / "galois.key").string(), &id);
  v1::TransferSpec s;
  s.set_format(kFormat);
  s.set_version(kVersion);
  s.set_dim(static_cast<std::uint32_t>(dim));
  s.set_key_id(id.finish_hex());
  detail::write_message(state, s);  // last: a folder without it has no keys yet
}

void client_encrypt(const fs::path& client, const fs::path& bundle, const std::string& split,
                    const Rows& data) {
  check_split_name(split);
  const auto mine = read_spec(client / "client.json");
  if (data.cols != mine.dim())
    fail("inputs of dimension " + std::to_string(data.cols) + ", the client's keys are for " +
         std::to_string(mine.dim()));
  if (data.rows == 0 || data.x.size() != data.rows * data.cols || data.y.size() != data.rows)
    fail("inputs: rows, features and labels do not match");
  const ckks::Context ctx = detail::open_context(client / "params.bin", true);
  const ckks::Encoder enc(ctx);
  const auto sk = detail::load_key<rlwe::SecretKey>(ctx, client / "secret.key");
  ckks::Encryptor encryptor(ctx, sk);
  const hetal::cryptotl::Packing pk(data.cols, ctx.max_slots());
  const std::size_t level = ctx.user_top_level(), n = pk.ciphertexts(data.rows);
  std::vector<ckks::SeededCiphertext> cts(n);
  for (std::size_t c = 0; c < n; ++c) {  // the encryptor's PRNG is sequential
    const std::size_t first = c * pk.per_ciphertext;
    const auto slots =
        pk.pack(data.x, first, std::min(pk.per_ciphertext, data.rows - first), ctx.max_slots());
    cts[c] = encryptor.encrypt_seeded(
        enc.encode(std::span<const double>(slots), level, ctx.default_scale()));
  }
  fs::create_directories(bundle);
  v1::TransferSpec spec;
  const fs::path spec_path = bundle / "transfer.json";
  if (fs::exists(spec_path)) {
    spec = read_spec(spec_path);
    if (spec.key_id() != mine.key_id())
      fail(bundle.string() + ": holds another client's inputs (key id " + spec.key_id() + ")");
  } else {
    spec = mine;
    for (const char* f : {"params.bin", "relin.key", "galois.key"})
      copy_atomically(client / f, bundle / f);
  }
  const fs::path inputs = bundle / ("inputs-" + split + ".cts");
  core::Sha256 hash;  // the outputs must name these inputs (client_decrypt checks it)
  detail::save_cts(ctx, cts, inputs, &hash);
  const std::uint64_t size = fs::file_size(inputs);
  const std::string digest = hash.finish_hex();
  detail::write_text(client / ("inputs-" + split + ".sha256"), digest + "\n");
  data::save_npy_i64((client / ("labels-" + split + ".npy")).string(), data.y);
  std::string classes;
  for (const auto& c : data.class_names) classes += c + "\n";
  if (!classes.empty()) detail::write_text(client / "classes.txt", classes);
  v1::TransferSplit* s = nullptr;
  for (auto& x : *spec.mutable_splits())
    if (x.name() == split) s = &x;
  if (!s) s = spec.add_splits();
  s->set_name(split);
  s->set_rows(data.rows);
  s->set_ciphertexts(static_cast<std::uint32_t>(n));
  auto* ref = s->mutable_inputs();
  ref->set_sha256(digest);
  ref->set_size(size);
  ref->set_kind(v1::INFERENCE_BATCH);
  ref->set_count(static_cast<std::uint32_t>(n));
  detail::write_message(spec_path, spec);
}

Rows client_decrypt(const fs::path& client, const fs::path& bundle, const std::string& split) {
  check_split_name(split);
  const auto mine = read_spec(client / "client.json");
  v1::TransferResult r;
  const fs::path rp = bundle / "result.json";
  if (!fs::exists(rp)) fail(bundle.string() + ": no result.json (has the server run forward?)");
  detail::read_message(rp, r);
  if (r.format() != kFormat || r.version() != kVersion)
    fail(rp.string() + ": not a version-1 " + kFormat + " result");
  if (r.key_id() != mine.key_id())
    fail(rp.string() + ": outputs computed under other keys (key id " + r.key_id() +
         ") than this client's (" + mine.key_id() + ")");
  if (r.dim() != mine.dim() || r.out_dim() + 2 != r.dim())
    fail(rp.string() + ": outputs for dimension " + std::to_string(r.dim()) + ", the client's is " +
         std::to_string(mine.dim()));
  const v1::TransferSplit* s = nullptr;
  for (const auto& x : r.splits())
    if (x.name() == split) s = &x;
  if (!s) fail(rp.string() + ": no split '" + split + "'");
  const ckks::Context ctx = detail::open_context(client / "params.bin", true);
  const ckks::Encoder enc(ctx);
  const hetal::cryptotl::Packing pk(mine.dim(), ctx.max_slots());
  if (r.samples_per_ciphertext() != pk.per_ciphertext || r.block() != pk.block)
    fail(rp.string() + ": another packing than the client's");
  {
    std::ifstream in(client / ("inputs-" + split + ".sha256"));
    std::string mine_digest;
    if (!(in >> mine_digest))
      fail(client.string() + ": no record of split '" + split + "' (encrypt it first)");
    if (s->inputs().sha256() != mine_digest)
      fail(rp.string() + ": the outputs of split '" + split +
           "' were computed from other inputs than the client's last encryption of it (run the "
           "forward pass again)");
  }
  const auto labels = train::load_labels((client / ("labels-" + split + ".npy")).string());
  if (labels.size() != s->rows())
    fail(rp.string() + ": split '" + split + "' has " + std::to_string(s->rows()) +
         " rows, the client encrypted " + std::to_string(labels.size()));
  const auto cts =
      detail::load_cts(ctx, bundle / ("outputs-" + split + ".cts"), pk.ciphertexts(s->rows()));
  const auto sk = detail::load_key<rlwe::SecretKey>(ctx, client / "secret.key");
  const ckks::Decryptor dec(ctx, sk);
  Rows out;
  out.rows = s->rows();
  out.cols = pk.out_dim;
  out.x.reserve(out.rows * out.cols);
  for (std::size_t c = 0; c < cts.size(); ++c) {
    const std::size_t count = std::min(pk.per_ciphertext, out.rows - c * pk.per_ciphertext);
    pk.unpack(enc.decode_real(dec.decrypt(cts[c])), count, out.x);
  }
  for (auto l : labels) out.y.push_back(static_cast<std::int64_t>(l));
  if (fs::exists(client / "classes.txt")) {
    std::ifstream in(client / "classes.txt");
    for (std::string line; std::getline(in, line);) out.class_names.push_back(line);
  }
  return out;
}

}  // namespace hetal::protocol::cryptotl
