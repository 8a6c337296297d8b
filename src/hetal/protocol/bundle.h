// The bundle: the directory layout, files and metadata that the client and the server exchange
// (src/hetal/protocol/README.md lists every file), and the helpers both roles use on it.
// Internal to the protocol layer.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hetal/ckks/context.h"
#include "hetal/ckks/serialization.h"
#include "hetal/core/sha256.h"
#include "hetal/matrix/enc_matrix.h"
#include "hetal/protocol/messages/hetal.pb.h"
#include "hetal/protocol/protocol.h"

namespace hetal::protocol::detail {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0);

inline constexpr const char* kFormat = "hetal-bundle";
inline constexpr int kVersion = 1;
/// The version of a job on the server's lower network (TrainConfig::lower_network_dim): a
/// server that predates it refuses the bundle instead of training on the raw inputs.
inline constexpr int kVersionLowerNetwork = 2;
/// The key files of a bundle, in the order the key id (SHA-256) hashes them.
inline constexpr const char* kKeyFiles[] = {"public.key", "relin.key", "galois.key",
                                            "bootstrap.key"};

[[noreturn]] void fail(const std::string& msg);

const char* optimizer_name(train::Optimizer o);
train::Optimizer optimizer_from(const std::string& s);

/// Atomic text file (temporary name, fsync, rename).
void write_text(const fs::path& path, const std::string& text);
json read_json(const fs::path& path);

template <class T>
T field(const json& j, const char* key, const fs::path& from) {
  try {
    return j.at(key).get<T>();
  } catch (const json::exception&) {
    fail(from.string() + ": missing or malformed field '" + key + "'");
  }
}

/// The parameters file, with the security policy (insecure parameters need `insecure`).
ckks::Context open_context(const fs::path& params_file, bool insecure);

/// A key file, errors as ProtocolError naming it; `hash` is fed the file as it is read.
template <class X>
X load_key(const ckks::Context& ctx, const fs::path& p, core::Sha256* hash = nullptr) {
  try {
    return ckks::load_file<X>(ctx, p.string(), hash);
  } catch (const ckks::SerializationError& e) {
    fail(e.what());
  }
}

/// The bundle's key file number i of kKeyFiles.
std::string key_path(const fs::path& bundle, std::size_t i);

/// A list of ciphertexts (full or seeded) as one file of consecutive objects; `hash` is fed the
/// file's bytes as they are written.
template <class C>
void save_cts(const ckks::Context& ctx, const std::vector<C>& cts, const fs::path& path,
              core::Sha256* hash = nullptr) {
  ckks::detail::write_file_atomically(
      path.string(), false,
      [&](std::ostream& out) {
        for (const auto& c : cts) ckks::save(ctx, c, out);
      },
      hash);
}

/// `count` ciphertexts (full or seeded objects, in any mix) from one file; `hash` is fed the whole
/// file as it is read.
std::vector<ckks::Ciphertext> load_cts(const ckks::Context& ctx, const fs::path& path,
                                       std::size_t count, core::Sha256* hash = nullptr);

/// The ciphertexts as an encrypted matrix in layout `l` (their count and slots checked).
matrix::EncMatrix as_matrix(const matrix::Layout& l, std::vector<ckks::Ciphertext> cts,
                            const fs::path& from);

/// Waits for `path`; fails early when the other side left an error file, or when w.cancelled
/// says so. Past w.timeout_s it fails, or returns false when `timeout_fails` is false.
bool wait_for(const fs::path& path, const WaitOptions& w, const std::vector<fs::path>& errors,
              bool timeout_fails = true);

/// meta.json: what the client uploaded.
struct Meta {
  TrainConfig cfg;
  train::Shape shape;
  std::vector<std::size_t> train_rows, val_rows;
  std::string key_id, description;
};

json config_json(const TrainConfig& c);
TrainConfig config_from(const json& j, const fs::path& from);
Meta read_meta(const fs::path& bundle);
/// meta.json: the JobSpec message of `m` (format and version set, no object references).
v1::JobSpec spec_of(const Meta& m);
/// A JobSpec's metadata, checked (hyper-parameters, shape, batch sizes); errors name `from`.
Meta meta_from_spec(const v1::JobSpec& spec, const std::string& from);

/// A protocol message as a file of its JSON mapping (proto field names), written atomically:
/// the directory transport carries the same messages as the gRPC transport.
void write_message(const fs::path& path, const google::protobuf::Message& m);
/// A message file; errors name the file ("malformed JSON" when it does not parse).
void read_message(const fs::path& path, google::protobuf::Message& m);

fs::path epoch_file(const fs::path& bundle, const char* kind, std::size_t e, const char* ext);

}  // namespace hetal::protocol::detail
