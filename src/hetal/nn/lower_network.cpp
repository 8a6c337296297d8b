#include "hetal/nn/lower_network.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

#include "hetal/core/sha256.h"
#include "hetal/data/npy.h"

namespace hetal::nn {

namespace {
constexpr char kMagic[8] = {'H', 'E', 'T', 'A', 'L', 'T', 'L', 'N'};
constexpr std::uint32_t kVersion = 1;
constexpr std::size_t kMaxSource = 1 << 16;

[[noreturn]] void bad(const std::string& what) { throw std::invalid_argument(what); }

std::size_t weight_count(std::size_t d) {
  return kConvKernel + 1 + d * d + d + (d - 2) * (d - 2) + (d - 2);
}

template <class T>
void put(std::string& out, const T& v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}
}  // namespace

double approx_relu(double x) {
  const auto& c = kApproxRelu;
  return c[0] + x * (c[1] + x * (c[2] + x * c[3]));
}

void LowerNetwork::check() const {
  if (dim < kConvKernel || dim > kMaxDim)
    bad("lower network: dimension " + std::to_string(dim) + " outside [" +
        std::to_string(kConvKernel) + ", " + std::to_string(kMaxDim) + "]");
  auto size = [&](const std::vector<double>& v, std::size_t n, const char* name) {
    if (v.size() != n)
      bad(std::string("lower network: ") + name + " has " + std::to_string(v.size()) +
          " values, expected " + std::to_string(n));
    for (double x : v)
      if (!std::isfinite(x)) bad(std::string("lower network: ") + name + " is not finite");
  };
  size(conv_w, kConvKernel, "conv_w");
  size(w1, dim * dim, "w1");
  size(b1, dim, "b1");
  size(w2, out_dim() * out_dim(), "w2");
  size(b2, out_dim(), "b2");
  if (!std::isfinite(conv_b)) bad("lower network: conv_b is not finite");
}

FusedNetwork fuse(const LowerNetwork& net) {
  net.check();
  const std::size_t d = net.dim, m = net.out_dim(), h = kConvKernel / 2;
  FusedNetwork f;
  f.dim = d;
  f.out_dim = m;
  // A = W1 C with C[i][j] = conv_w[j - i + h] for |j - i| <= h (zero padding at the ends).
  f.a_mat.assign(d * d, 0.0);
  f.a_bias.assign(d, 0.0);
  for (std::size_t r = 0; r < d; ++r) {
    double bias = net.b1[r];
    for (std::size_t i = 0; i < d; ++i) {
      const double w = net.w1[r * d + i];
      bias += w * net.conv_b;
      for (std::size_t t = 0; t < kConvKernel; ++t) {
        const long long j =
            static_cast<long long>(i) + static_cast<long long>(t) - static_cast<long long>(h);
        if (j >= 0 && j < static_cast<long long>(d)) f.a_mat[r * d + j] += w * net.conv_w[t];
      }
    }
    f.a_bias[r] = bias;
  }
  // B = W2 P with P[j][i] = 1/3 for i in {j, j+1, j+2}.
  f.b_mat.assign(m * d, 0.0);
  for (std::size_t r = 0; r < m; ++r)
    for (std::size_t j = 0; j < m; ++j)
      for (std::size_t t = 0; t < 3; ++t) f.b_mat[r * d + j + t] += net.w2[r * m + j] / 3.0;
  f.b_bias = net.b2;
  return f;
}

std::vector<double> forward_layers(const LowerNetwork& net, std::span<const double> x) {
  net.check();
  const std::size_t d = net.dim, m = net.out_dim(), h = kConvKernel / 2;
  if (x.size() != d)
    bad("lower network: input of " + std::to_string(x.size()) + " values, expected " +
        std::to_string(d));
  std::vector<double> c(d), z(d), p(m), y(m);
  for (std::size_t i = 0; i < d; ++i) {
    double s = net.conv_b;
    for (std::size_t t = 0; t < kConvKernel; ++t) {
      const long long j = static_cast<long long>(i + t) - static_cast<long long>(h);
      if (j >= 0 && j < static_cast<long long>(d)) s += net.conv_w[t] * x[j];
    }
    c[i] = s;
  }
  for (std::size_t r = 0; r < d; ++r) {
    double s = net.b1[r];
    for (std::size_t i = 0; i < d; ++i) s += net.w1[r * d + i] * c[i];
    z[r] = approx_relu(s);
  }
  for (std::size_t j = 0; j < m; ++j) p[j] = (z[j] + z[j + 1] + z[j + 2]) / 3.0;
  for (std::size_t r = 0; r < m; ++r) {
    double s = net.b2[r];
    for (std::size_t j = 0; j < m; ++j) s += net.w2[r * m + j] * p[j];
    y[r] = s;
  }
  return y;
}

std::vector<double> forward(const FusedNetwork& f, std::span<const double> x, std::size_t rows) {
  const std::size_t d = f.dim, m = f.out_dim;
  if (x.size() != rows * d) bad("lower network: input size does not match rows x dimension");
  std::vector<double> out(rows * m), z(d);
  for (std::size_t n = 0; n < rows; ++n) {
    const double* xr = x.data() + n * d;
    for (std::size_t r = 0; r < d; ++r) {
      double s = f.a_bias[r];
      for (std::size_t i = 0; i < d; ++i) s += f.a_mat[r * d + i] * xr[i];
      z[r] = approx_relu(s);
    }
    for (std::size_t r = 0; r < m; ++r) {
      double s = f.b_bias[r];
      for (std::size_t i = 0; i < d; ++i) s += f.b_mat[r * d + i] * z[i];
      out[n * m + r] = s;
    }
  }
  return out;
}

void save_lower_network(const LowerNetwork& net, const std::string& path) {
  net.check();
  if (net.source.size() > kMaxSource) bad("lower network: source text too long");
  std::string out(kMagic, sizeof kMagic);
  put(out, kVersion);
  put(out, static_cast<std::uint64_t>(net.dim));
  put(out, static_cast<std::uint64_t>(net.source.size()));
  out += net.source;
  for (double w : net.conv_w) put(out, w);
  put(out, net.conv_b);
  for (const auto* v : {&net.w1, &net.b1, &net.w2, &net.b2})
    for (double w : *v) put(out, w);
  core::Sha256 sha;
  sha.update(out.data(), out.size());
  const auto digest = sha.finish();
  out.append(reinterpret_cast<const char*>(digest.data()), digest.size());
  data::write_file_atomic(path, out, /*owner_only=*/true);
}

LowerNetwork load_lower_network(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) bad(path + ": cannot open the lower network file");
  const std::uint64_t max_bytes =
      sizeof kMagic + 4 + 16 + kMaxSource + 8 * weight_count(kMaxDim) + 32;
  std::string bytes;
  {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (ec || size > max_bytes) bad(path + ": not a lower network file (size)");
    bytes.resize(size);
    in.read(bytes.data(), static_cast<std::streamsize>(size));
    if (!in) bad(path + ": read error");
  }
  std::size_t pos = 0;
  auto need = [&](std::size_t n) {
    if (bytes.size() - pos < n) bad(path + ": truncated lower network file");
  };
  auto get = [&](auto& v) {
    need(sizeof v);
    std::memcpy(&v, bytes.data() + pos, sizeof v);
    pos += sizeof v;
  };
  need(sizeof kMagic);
  if (std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
    bad(path + ": not a lower network file (bad magic)");
  pos = sizeof kMagic;
  std::uint32_t version = 0;
  get(version);
  if (version != kVersion)
    bad(path + ": lower network file version " + std::to_string(version) + ", expected " +
        std::to_string(kVersion));
  std::uint64_t dim = 0, source = 0;
  get(dim);
  get(source);
  if (dim < kConvKernel || dim > kMaxDim)
    bad(path + ": dimension " + std::to_string(dim) + " out of range");
  if (source > kMaxSource) bad(path + ": source text too long");
  const std::size_t body = pos + source + 8 * weight_count(dim);
  if (bytes.size() < body + 32) bad(path + ": truncated lower network file");
  if (bytes.size() > body + 32) bad(path + ": bytes after the lower network's checksum");
  core::Sha256 sha;
  sha.update(bytes.data(), body);
  const auto digest = sha.finish();
  if (std::memcmp(digest.data(), bytes.data() + body, 32) != 0)
    bad(path + ": checksum mismatch (corrupt lower network file)");
  LowerNetwork net;
  net.dim = dim;
  net.source = bytes.substr(pos, source);
  pos += source;
  auto vec = [&](std::vector<double>& v, std::size_t n) {
    v.resize(n);
    for (auto& x : v) get(x);
  };
  vec(net.conv_w, kConvKernel);
  get(net.conv_b);
  vec(net.w1, dim * dim);
  vec(net.b1, dim);
  vec(net.w2, (dim - 2) * (dim - 2));
  vec(net.b2, dim - 2);
  try {
    net.check();
  } catch (const std::invalid_argument& e) {
    bad(path + ": " + e.what());
  }
  return net;
}

}  // namespace hetal::nn
