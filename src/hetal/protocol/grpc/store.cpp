#include "hetal/protocol/grpc/store.h"

#include <unistd.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "hetal/ckks/serialization.h"

namespace hetal::protocol::grpc_transport {

using json = nlohmann::json;
using ckks::ObjectType;
using grpc::StatusCode;

namespace {
[[noreturn]] void refuse(StatusCode c, const std::string& msg) { throw ServiceError(c, msg); }

std::uint16_t u16_at(const unsigned char* p) {
  return static_cast<std::uint16_t>(p[0] | p[1] << 8);
}
std::uint64_t u64_at(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return v;
}

const char* kind_name(v1::ObjectKind k) {
  return v1::ObjectKind_IsValid(k) ? v1::ObjectKind_Name(k).c_str() : "unknown kind";
}

/// The serialized object types a file of this kind may hold, in order of their appearance.
bool type_allowed(v1::ObjectKind kind, std::size_t index, std::uint16_t type) {
  switch (kind) {
    case v1::PARAMETERS:
      return index == 0 && type == static_cast<std::uint16_t>(ObjectType::Parameters);
    case v1::PUBLIC_KEY:
      return index == 0 && type == static_cast<std::uint16_t>(ObjectType::PublicKey);
    case v1::RELIN_KEY:
      return index == 0 && type == static_cast<std::uint16_t>(ObjectType::RelinKey);
    case v1::GALOIS_KEYS:
      return index == 0 && type == static_cast<std::uint16_t>(ObjectType::GaloisKeys);
    case v1::BOOTSTRAP_KEYS:  // Galois keys, then the encapsulation keys
      return index == 0
                 ? type == static_cast<std::uint16_t>(ObjectType::GaloisKeys)
                 : index <= 2 && type == static_cast<std::uint16_t>(ObjectType::SwitchingKey);
    case v1::TRAIN_BATCH:
    case v1::VALIDATION_BATCH:
    case v1::INFERENCE_BATCH:
      return type == static_cast<std::uint16_t>(ObjectType::Ciphertext) ||
             type == static_cast<std::uint16_t>(ObjectType::SeededCiphertext);
    default:
      return false;
  }
}
}  // namespace

bool is_hex(const std::string& s, std::size_t n) {
  if (s.size() != n) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

void check_object_file(const fs::path& path, v1::ObjectKind kind, std::uint64_t size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) refuse(StatusCode::INTERNAL, "cannot reopen the uploaded object");
  check_objects(in, kind, size);
}

void check_objects(std::istream& in, v1::ObjectKind kind, std::uint64_t size) {
  std::uint64_t at = 0;
  std::size_t index = 0;
  while (at < size) {
    unsigned char h[24];
    in.seekg(static_cast<std::streamoff>(at));
    in.read(reinterpret_cast<char*>(h), 24);
    if (in.gcount() != 24 || std::memcmp(h, "HETL", 4) != 0)
      refuse(StatusCode::INVALID_ARGUMENT, std::string("object ") + std::to_string(index) +
                                               " of the " + kind_name(kind) +
                                               " upload is not a hetal object (bad header)");
    const std::uint16_t type = u16_at(h + 6);
    if (type == static_cast<std::uint16_t>(ObjectType::SecretKey))
      refuse(StatusCode::INVALID_ARGUMENT,
             "the upload holds a secret key: refused (the secret key never leaves the client)");
    if (!type_allowed(kind, index, type))
      refuse(StatusCode::INVALID_ARGUMENT, std::string("object ") + std::to_string(index) +
                                               " of type " + std::to_string(type) +
                                               " does not belong in a " + kind_name(kind));
    const std::uint64_t len = u64_at(h + 16);
    if (len > size - at || size - at - len < 32)
      refuse(StatusCode::INVALID_ARGUMENT,
             std::string("object ") + std::to_string(index) + " of the " + kind_name(kind) +
                 " upload declares more bytes than the upload holds (truncated)");
    at += 32 + len;
    ++index;
  }
  if (index == 0) refuse(StatusCode::INVALID_ARGUMENT, "the upload is empty");
}

Store::Store(fs::path root, bool insecure, StoreLimits limits)
    : root_(std::move(root)), insecure_(insecure), limits_(limits) {
  fs::create_directories(root_ / "tenants");
}

std::string Store::tenant_of(const std::string& identity) {
  core::Sha256 h;
  h.update(identity.data(), identity.size());
  return h.finish_hex().substr(0, 32);
}

fs::path Store::tenant_dir(const std::string& tenant) const {
  if (!is_hex(tenant, 32)) refuse(StatusCode::INTERNAL, "bad tenant name");
  return root_ / "tenants" / tenant;
}

void check_ref(const v1::ObjectRef& ref) {
  if (!is_hex(ref.sha256(), 64))
    refuse(StatusCode::INVALID_ARGUMENT, "object sha256 must be 64 lowercase hex digits");
  if (ref.kind() == v1::OBJECT_KIND_UNSPECIFIED || !v1::ObjectKind_IsValid(ref.kind()))
    refuse(StatusCode::INVALID_ARGUMENT, "object kind missing or unknown");
  if (ref.size() == 0) refuse(StatusCode::INVALID_ARGUMENT, "object size must be positive");
  if (ref.kind() != v1::PARAMETERS && !is_hex(ref.parameters_sha256(), 64))
    refuse(StatusCode::INVALID_ARGUMENT,
           "object parameters_sha256 must name the parameters object (64 hex digits)");
}

fs::path Store::object(const std::string& tenant, const v1::ObjectRef& ref) const {
  check_ref(ref);
  const fs::path p = tenant_dir(tenant) / "objects" / ref.sha256();
  const fs::path meta = p.string() + ".json";
  if (!fs::exists(p) || !fs::exists(meta))
    refuse(StatusCode::NOT_FOUND, std::string(kind_name(ref.kind())) + " object " +
                                      ref.sha256().substr(0, 12) + "… is not uploaded");
  std::ifstream in(meta);
  const json j = json::parse(in, nullptr, false);
  if (j.is_discarded() || j.value("kind", -1) != static_cast<int>(ref.kind()) ||
      j.value("size", std::uint64_t{0}) != ref.size() ||
      j.value("count", std::uint32_t{0}) != ref.count() ||
      j.value("parameters", std::string()) != ref.parameters_sha256())
    refuse(StatusCode::INVALID_ARGUMENT, std::string("object ") + ref.sha256().substr(0, 12) +
                                             "… was uploaded as another kind, size or count");
  return p;
}

std::pair<std::uint64_t, bool> Store::query(const std::string& tenant, const v1::ObjectRef& ref,
                                            bool from_upload) {
  check_ref(ref);
  const fs::path dir = tenant_dir(tenant);
  if (!from_upload) {
    // A stream still writing (its client may have been cut a moment ago) makes any size stale.
    std::lock_guard<std::mutex> lock(mutex_);
    if (writing_.count(tenant + "/" + ref.sha256()))
      refuse(StatusCode::ABORTED, "an upload of this object is still in progress; ask again");
  }
  if (fs::exists(dir / "objects" / (ref.sha256() + ".json"))) {
    object(tenant, ref);  // same kind, size and count
    return {ref.size(), true};
  }
  const fs::path part = dir / "uploads" / (ref.sha256() + ".part");
  std::error_code ec;
  const auto n = fs::file_size(part, ec);
  return {ec ? 0 : n, false};
}

std::shared_ptr<const ckks::Context> Store::context(const std::string& tenant,
                                                    const std::string& sha) {
  if (!is_hex(sha, 64)) refuse(StatusCode::INVALID_ARGUMENT, "bad parameters sha256");
  const std::string key = tenant + "/" + sha;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = contexts_.find(key); it != contexts_.end()) return it->second;
  }
  const fs::path p = tenant_dir(tenant) / "objects" / sha;
  if (!fs::exists(p.string() + ".json"))
    refuse(StatusCode::FAILED_PRECONDITION,
           "the parameters object " + sha.substr(0, 12) + "… is not uploaded (upload it first)");
  std::shared_ptr<const ckks::Context> ctx;
  try {
    ctx = std::make_shared<const ckks::Context>(
        ckks::load_parameters_file(p.string()),
        insecure_ ? ckks::SecurityPolicy::allow_insecure : ckks::SecurityPolicy::require_128);
  } catch (const std::exception& e) {
    refuse(StatusCode::FAILED_PRECONDITION, std::string("parameters refused: ") + e.what());
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (contexts_.size() >= 16) contexts_.clear();  // bounded: rebuilt on demand
  contexts_[key] = ctx;
  return ctx;
}

std::uint64_t Store::max_size(const std::string& tenant, const v1::ObjectRef& ref) {
  check_ref(ref);
  if (ref.kind() == v1::PARAMETERS) return ckks::max_object_bytes(nullptr, ObjectType::Parameters);
  const auto ctx = context(tenant, ref.parameters_sha256());
  const std::uint64_t n = ref.count();
  const auto mul = [](std::uint64_t a, std::uint64_t b) {
    return b && a > UINT64_MAX / b ? UINT64_MAX : a * b;
  };
  switch (ref.kind()) {
    case v1::PUBLIC_KEY:
      return ckks::max_object_bytes(ctx.get(), ObjectType::PublicKey);
    case v1::RELIN_KEY:
      return ckks::max_object_bytes(ctx.get(), ObjectType::RelinKey);
    case v1::GALOIS_KEYS:
    case v1::BOOTSTRAP_KEYS:
      if (n == 0 || n > limits_.max_keys)
        refuse(StatusCode::INVALID_ARGUMENT, "key count " + std::to_string(n) +
                                                 " out of range (1.." +
                                                 std::to_string(limits_.max_keys) + ")");
      return ckks::max_object_bytes(ctx.get(), ObjectType::GaloisKeys, n) +
             (ref.kind() == v1::BOOTSTRAP_KEYS
                  ? 2 * ckks::max_object_bytes(ctx.get(), ObjectType::SwitchingKey)
                  : 0);
    default:
      if (n == 0 || n > limits_.max_ciphertexts)
        refuse(StatusCode::INVALID_ARGUMENT, "ciphertext count " + std::to_string(n) +
                                                 " out of range (1.." +
                                                 std::to_string(limits_.max_ciphertexts) + ")");
      return mul(n, ckks::max_object_bytes(ctx.get(), ObjectType::Ciphertext));
  }
}

std::uint64_t Store::tenant_bytes(const std::string& tenant, const std::string& except) const {
  const fs::path t = tenant_dir(tenant);
  std::uint64_t total = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(t / "objects", ec))
    if (e.is_regular_file()) total += e.file_size();
  // An upload counts with its declared size from its start: a reservation, so that uploads
  // begun side by side cannot together pass the quota.
  for (const auto& e : fs::directory_iterator(t / "uploads", ec)) {
    const std::string name = e.path().filename().string();
    if (!e.is_regular_file() || e.path().extension() != ".json") continue;
    if (name.substr(0, 64) == except) continue;
    std::ifstream in(e.path());
    const json j = json::parse(in, nullptr, false);
    if (!j.is_discarded()) total += j.value("size", std::uint64_t{0});
  }
  // Job outputs (models, checkpoints, logits); a job's inputs are hard links to the objects.
  for (auto it = fs::recursive_directory_iterator(t / "jobs", ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    std::error_code e2;
    if (it->is_regular_file(e2) && fs::hard_link_count(it->path(), e2) == 1)
      total += it->file_size(e2);
  }
  return total;
}

Store::Upload::Upload(Store& store, std::string tenant, v1::ObjectRef ref)
    : store_(store), tenant_(std::move(tenant)), ref_(std::move(ref)) {
  max_ = store_.max_size(tenant_, ref_);  // validates the reference; may load the parameters
  if (ref_.size() > max_)
    refuse(StatusCode::INVALID_ARGUMENT,
           std::string("a ") + kind_name(ref_.kind()) + " of " + std::to_string(ref_.count()) +
               " under these parameters has at most " + std::to_string(max_) + " bytes, not " +
               std::to_string(ref_.size()));
  key_ = tenant_ + "/" + ref_.sha256();
  {
    std::lock_guard<std::mutex> lock(store_.mutex_);
    if (!store_.writing_.insert(key_).second) {
      key_.clear();
      refuse(StatusCode::ABORTED, "another upload of this object is in progress");
    }
  }
  try {
    open();
  } catch (...) {
    std::lock_guard<std::mutex> lock(store_.mutex_);
    store_.writing_.erase(key_);  // a refused upload holds nothing
    key_.clear();
    throw;
  }
}

void Store::Upload::open() {
  const auto [n, done] = store_.query(tenant_, ref_, true);
  committed_ = n;
  complete_ = done;
  if (complete_) return;
  const fs::path dir = store_.tenant_dir(tenant_) / "uploads";
  fs::create_directories(dir);
  fs::create_directories(store_.tenant_dir(tenant_) / "objects");
  part_ = dir / (ref_.sha256() + ".part");
  const fs::path record = part_.string() + ".json";
  const json declared = {{"size", ref_.size()},
                         {"kind", static_cast<int>(ref_.kind())},
                         {"count", ref_.count()},
                         {"parameters", ref_.parameters_sha256()}};
  {
    std::lock_guard<std::mutex> lock(store_.quota_mutex_);
    // A stored part made under another declaration (or longer than this one) is not resumed.
    std::ifstream in(record);
    const json old = json::parse(in, nullptr, false);
    if (committed_ > 0 && (old.is_discarded() || old != declared || committed_ > ref_.size())) {
      std::error_code ec;
      fs::remove(part_, ec);
      committed_ = 0;
    }
    if (store_.tenant_bytes(tenant_, ref_.sha256()) + ref_.size() > store_.limits_.tenant_bytes)
      refuse(StatusCode::RESOURCE_EXHAUSTED, "the tenant's storage quota (" +
                                                 std::to_string(store_.limits_.tenant_bytes) +
                                                 " bytes) would be exceeded");
    std::ofstream(record) << declared.dump();
  }
  // The hash follows the bytes as they arrive; a resumed upload hashes its stored prefix once.
  hash_ = std::make_unique<core::Sha256>();
  if (committed_ > 0 && hash_->update_file(part_.string(), committed_) != committed_)
    refuse(StatusCode::INTERNAL, "cannot reread the upload's stored part");
  file_.reset(std::fopen(part_.c_str(), "ab"));
  if (!file_) refuse(StatusCode::INTERNAL, "cannot open the upload's file");
}

Store::Upload::~Upload() {
  if (file_) flush();
  if (!key_.empty()) {
    std::lock_guard<std::mutex> lock(store_.mutex_);
    store_.writing_.erase(key_);
  }
}

void Store::Upload::write(std::uint64_t offset, const std::string& data) {
  if (complete_) refuse(StatusCode::ALREADY_EXISTS, "the object is already stored");
  if (offset != committed_)
    refuse(StatusCode::INVALID_ARGUMENT, "write_offset " + std::to_string(offset) +
                                             " differs from the committed size " +
                                             std::to_string(committed_));
  if (committed_ > ref_.size() || data.size() > ref_.size() - committed_)
    refuse(StatusCode::OUT_OF_RANGE,
           "the data goes past the object's declared size " + std::to_string(ref_.size()));
  if (!data.empty() && std::fwrite(data.data(), 1, data.size(), file_.get()) != data.size())
    refuse(StatusCode::INTERNAL, "cannot write the upload (disk full?)");
  hash_->update(data.data(), data.size());
  committed_ += data.size();
}

void Store::Upload::flush() {
  if (!file_) return;
  std::fflush(file_.get());
  ::fsync(fileno(file_.get()));
}

void Store::Upload::finish() {
  if (complete_) return;
  flush();
  file_.reset();
  const auto drop = [&](StatusCode c, const std::string& msg) {
    std::error_code ec;
    fs::remove(part_, ec);  // a wrong object is not kept: the client starts it again
    fs::remove(part_.string() + ".json", ec);
    refuse(c, msg);
  };
  if (committed_ != ref_.size())
    refuse(StatusCode::FAILED_PRECONDITION, "finish_write at " + std::to_string(committed_) +
                                                " of " + std::to_string(ref_.size()) + " bytes");
  if (hash_->finish_hex() != ref_.sha256())
    drop(StatusCode::DATA_LOSS, "the uploaded bytes do not have the declared SHA-256 (corrupted)");
  try {
    check_object_file(part_, ref_.kind(), committed_);
  } catch (const ServiceError& e) {
    drop(e.code(), e.what());
  }
  if (ref_.kind() == v1::PARAMETERS) {
    try {
      const ckks::Context ctx(ckks::load_parameters_file(part_.string()),
                              store_.insecure_ ? ckks::SecurityPolicy::allow_insecure
                                               : ckks::SecurityPolicy::require_128);
    } catch (const std::exception& e) {
      drop(StatusCode::FAILED_PRECONDITION,
           std::string("parameters refused: ") + e.what() +
               (store_.insecure_ ? "" : " (the server runs without --insecure)"));
    }
  }
  const fs::path obj = store_.tenant_dir(tenant_) / "objects" / ref_.sha256();
  const json meta = {{"kind", static_cast<int>(ref_.kind())},
                     {"size", ref_.size()},
                     {"count", ref_.count()},
                     {"parameters", ref_.parameters_sha256()}};
  {
    const fs::path tmp = obj.string() + ".json.tmp";
    std::ofstream(tmp) << meta.dump();
    fs::rename(part_, obj);
    fs::rename(tmp, obj.string() + ".json");  // the record last: an object is there once named
    std::error_code ec;
    fs::remove(part_.string() + ".json", ec);
  }
  complete_ = true;
}

}  // namespace hetal::protocol::grpc_transport
