// CryptoTL's roles (Walch et al., arXiv 2205.11935) over the directory transport: the client
// keeps its secret key and labels in its own folder, and puts its parameters, evaluation keys and
// encrypted inputs in a bundle folder; the server evaluates its private lower network on them
// and puts the encrypted outputs back. The files (README.md in this folder):
//
//   client/  params.bin  secret.key (0600)  relin.key  galois.key  client.json (TransferSpec: dim,
//            key id)  labels-<split>.npy  classes.txt
//   bundle/  params.bin  relin.key  galois.key  transfer.json (TransferSpec)  inputs-<split>.cts
//            outputs-<split>.cts  result.json (TransferResult), written by the server
//
// Every error is a ProtocolError naming the file and the problem.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "hetal/ckks/parameters.h"
#include "hetal/nn/lower_network.h"
#include "hetal/protocol/messages/hetal.pb.h"
#include "hetal/protocol/protocol.h"

namespace hetal::protocol::cryptotl {

namespace fs = std::filesystem;

inline constexpr const char* kFormat = "hetal-cryptotl";
inline constexpr std::uint32_t kVersion = 1;
/// The largest ring the server evaluates its network at (the client picks the parameters).
inline constexpr int kMaxLogN = 15;

/// A split name: [a-z0-9_-]{1,32}; ProtocolError otherwise.
void check_split_name(const std::string& name);

/// Rows of features and their labels (labels stay with the client).
struct Rows {
  std::size_t rows = 0, cols = 0;
  std::vector<float> x;
  std::vector<std::int64_t> y;
  std::vector<std::string> class_names;
};

/// Makes the client's keys for inputs of dimension `dim` (only the rotations the lower network
/// of that shape needs) unless `client` already holds keys for that dimension; a folder with keys
/// for another dimension is an error. Insecure parameters need `insecure`.
void client_setup(const fs::path& client, std::size_t dim, const ckks::Parameters& params,
                  bool insecure = false);

/// Encrypts `data` (many samples per ciphertext, secret-key encryption, seeded) into
/// bundle/inputs-<split>.cts, with the parameters and evaluation keys (copied on first use) and
/// the split recorded in bundle/transfer.json; the labels go to client/labels-<split>.npy.
void client_encrypt(const fs::path& client, const fs::path& bundle, const std::string& split,
                    const Rows& data);

/// Decrypts bundle/outputs-<split>.cts: rows x (dim - 2) features with the client's labels.
/// Refuses outputs made under other keys than the client's, or of another shape.
Rows client_decrypt(const fs::path& client, const fs::path& bundle, const std::string& split);

struct DpOptions {
  double epsilon = 0, delta = 1e-5;
  double input_lo = -1, input_hi = 1;  ///< the box the sensitivity is bounded over, or
  double input_radius = 0;             ///< (> 0) the L2 ball of this radius
};

struct ForwardOptions {
  bool insecure = false;        ///< accept parameters below 128-bit security
  std::optional<DpOptions> dp;  ///< add calibrated Gaussian noise under encryption
};

/// The files one forward pass reads and writes (the directory transport's bundle, or the gRPC
/// service's object store).
struct ForwardFiles {
  fs::path params, relin, galois;
  struct Split {
    std::string name;
    std::size_t rows = 0;
    fs::path inputs, outputs;
  };
  std::vector<Split> splits;
};

/// The server's forward pass: checks the parameters (128-bit unless insecure, N <= 2^kMaxLogN),
/// the keys (their SHA-256 against spec.key_id, the rotations the network needs; a secret key is
/// refused), the dimension against the model's, each split's name (once), ciphertext count and
/// inputs digest (spec.splits[i].inputs.sha256); evaluates the network, adds DP noise if asked,
/// writes each split's outputs atomically, and returns the result (each split naming its inputs).
v1::TransferResult run_forward(const nn::LowerNetwork& net, const v1::TransferSpec& spec,
                               const ForwardFiles& files, const ForwardOptions& o);

/// run_forward on a bundle folder; result.json written last.
v1::TransferResult server_forward(const fs::path& model, const fs::path& bundle,
                                  const ForwardOptions& o);

}  // namespace hetal::protocol::cryptotl
