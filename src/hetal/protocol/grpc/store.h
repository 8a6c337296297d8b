// The service's durable state under --data DIR, per tenant: content-addressed objects (keys,
// ciphertext batches) with resumable uploads, and jobs, each a bundle directory in the
// directory transport's layout (src/hetal/protocol/README.md) that the server role trains on.
//
//   DIR/tenants/<tenant>/objects/<sha256>        committed objects, <sha256>.json their kind
//   DIR/tenants/<tenant>/uploads/<sha256>.part   uploads in progress (committed size = file size)
//   DIR/tenants/<tenant>/jobs/<job id>/           job.json (state) + the bundle
//
// <tenant> is a hash of the client certificate's identity, <sha256> and <job id> are checked to
// be lowercase hex of the right length before they name anything: no client string is a path.
#pragma once

#include <grpcpp/support/status.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>

#include "hetal/ckks/context.h"
#include "hetal/core/sha256.h"
#include "hetal/protocol/messages/hetal.pb.h"

namespace hetal::protocol::grpc_transport {

namespace fs = std::filesystem;

/// A refusal with the gRPC status it answers.
class ServiceError : public std::runtime_error {
 public:
  ServiceError(grpc::StatusCode code, const std::string& msg)
      : std::runtime_error(msg), code_(code) {}
  grpc::StatusCode code() const { return code_; }
  grpc::Status status() const { return {code_, what()}; }

 private:
  grpc::StatusCode code_;
};

struct StoreLimits {
  std::uint64_t tenant_bytes = 64ull << 30;  ///< objects and uploads per tenant
  std::size_t tenant_jobs = 16;              ///< queued or running jobs per tenant
  std::uint32_t max_keys = 256;              ///< rotation keys in one Galois or bootstrap key
  std::uint32_t max_ciphertexts = 4096;      ///< ciphertexts in one batch object
};

/// True when s is exactly `n` lowercase hex digits.
bool is_hex(const std::string& s, std::size_t n);

class Store {
 public:
  /// `insecure`: parameters below 128-bit security are accepted (as `hetal --insecure`).
  Store(fs::path root, bool insecure, StoreLimits limits);

  /// The tenant name of a client identity (its certificate's common name).
  static std::string tenant_of(const std::string& identity);
  fs::path tenant_dir(const std::string& tenant) const;
  const fs::path& root() const { return root_; }
  bool insecure() const { return insecure_; }
  const StoreLimits& limits() const { return limits_; }

  /// The committed path of an object, after checking its reference against what is stored
  /// (sha, size, kind); NOT_FOUND if the tenant has no such object.
  fs::path object(const std::string& tenant, const v1::ObjectRef& ref) const;
  /// What is stored of an object: (committed bytes, complete). Validates the reference.
  /// ABORTED while a stream is still writing the object (unless asked by that stream).
  std::pair<std::uint64_t, bool> query(const std::string& tenant, const v1::ObjectRef& ref,
                                       bool from_upload = false);

  /// The parameters object `sha` of the tenant as a context (cached), under the policy.
  std::shared_ptr<const ckks::Context> context(const std::string& tenant, const std::string& sha);

  /// The most bytes an object of this reference may have (its kind, count and parameters).
  std::uint64_t max_size(const std::string& tenant, const v1::ObjectRef& ref);

  /// One upload stream of one object: at most one at a time per (tenant, object).
  class Upload {
   public:
    Upload(Store& store, std::string tenant, v1::ObjectRef ref);
    ~Upload();
    Upload(const Upload&) = delete;
    Upload& operator=(const Upload&) = delete;
    std::uint64_t committed() const { return committed_; }
    bool complete() const { return complete_; }
    /// Appends at `offset`, which must equal committed().
    void write(std::uint64_t offset, const std::string& data);
    /// Flushes what was written (durable before its size is reported).
    void flush();
    /// Size, SHA-256 and object headers checked (a secret key refused), then committed.
    void finish();

   private:
    void open();
    Store& store_;
    std::string tenant_, key_;
    v1::ObjectRef ref_;
    fs::path part_;
    std::uint64_t committed_ = 0, max_ = 0;
    bool complete_ = false;
    std::unique_ptr<core::Sha256> hash_;  // of the committed bytes, fed as they arrive
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> file_{nullptr, &std::fclose};
  };

  /// Bytes the tenant holds: objects, uploads at their declared sizes (but `except`'s), and
  /// job outputs.
  std::uint64_t tenant_bytes(const std::string& tenant, const std::string& except = "") const;

 private:
  fs::path root_;
  bool insecure_;
  StoreLimits limits_;
  mutable std::mutex mutex_, quota_mutex_;
  std::set<std::string> writing_;  // (tenant/sha) with a live upload stream
  std::map<std::string, std::shared_ptr<const ckks::Context>> contexts_;
};

/// Checks an uploaded object's chain of serialized objects (`size` bytes from `in`): each
/// header's type allowed for the kind (a secret key never), lengths consistent with the size.
/// Throws ServiceError. The objects' contents are checked when the server role loads them.
void check_objects(std::istream& in, v1::ObjectKind kind, std::uint64_t size);
void check_object_file(const fs::path& path, v1::ObjectKind kind, std::uint64_t size);

/// Checks an object reference's fields (hex digests, kind, size); throws ServiceError.
void check_ref(const v1::ObjectRef& ref);

}  // namespace hetal::protocol::grpc_transport
