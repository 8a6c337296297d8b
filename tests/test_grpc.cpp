// The gRPC service against hostile and broken peers: a real `hetal server serve` process on
// loopback with mutual TLS (certificates from scripts/make_certs.sh), driven through the raw
// stub so that every malformed request can be made. Each refusal must carry the right status
// and a message naming the problem, and the server must go on serving.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "hetal/ckks/encoder.h"
#include "hetal/ckks/encryptor.h"
#include "hetal/ckks/keygen.h"
#include "hetal/ckks/serialization.h"
#include "hetal/core/sha256.h"
#include "hetal/protocol/grpc/tls.h"
#include "hetal/protocol/messages/hetal.grpc.pb.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
namespace v1 = hetal::v1;
using namespace hetal;
using grpc::StatusCode;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
std::string sha_hex(const std::string& s) {
  core::Sha256 h;
  h.update(s.data(), s.size());
  return h.finish_hex();
}

/// One `hetal server serve` process, killed at the end.
struct ServerProcess {
  pid_t pid = -1;
  int port = 0;
  /// `extra`: "--insecure" (the global flag) and options of `server serve`.
  ServerProcess(const fs::path& dir, const fs::path& certs, std::vector<std::string> extra) {
    const char* bin = std::getenv("HETAL");
    if (!bin) throw std::runtime_error("HETAL (the hetal binary) is not set");
    const fs::path pf = dir / "port";
    fs::remove(pf);
    std::vector<std::string> args = {bin};
    for (auto& a : extra)
      if (a == "--insecure") args.push_back(a);
    for (const std::string& a : std::vector<std::string>{
             "server", "serve", "--listen", "127.0.0.1:0", "--data", (dir / "srv").string(), "--ca",
             (certs / "ca.crt").string(), "--cert", (certs / "server.crt").string(), "--key",
             (certs / "server.key").string(), "--port-file", pf.string()})
      args.push_back(a);
    for (auto& a : extra)
      if (a != "--insecure") args.push_back(a);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid, bin, nullptr, nullptr, argv.data(), environ) != 0)
      throw std::runtime_error("cannot start the server");
    for (int i = 0; i < 100 && !fs::exists(pf); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::ifstream in(pf);
    in >> port;
    if (!port) throw std::runtime_error("the server did not start");
  }
  ~ServerProcess() {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  bool alive() const { return waitpid(pid, nullptr, WNOHANG) == 0; }
};

class GrpcService : public ::testing::Test {
 protected:
  static inline fs::path root, certs;
  static void SetUpTestSuite() {
    root = fs::temp_directory_path() / ("hetal_grpc_" + std::to_string(getpid()));
    fs::remove_all(root);
    fs::create_directories(root);
    certs = root / "certs";
    const std::string cmd = std::string("bash ") + HETAL_SOURCE_DIR + "/scripts/make_certs.sh " +
                            certs.string() + " tenant-a tenant-b > /dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }
  static void TearDownTestSuite() { fs::remove_all(root); }

  static std::unique_ptr<v1::Hetal::Stub> stub(int port, const std::string& who,
                                               bool with_cert = true,
                                               const std::string& ca = "ca.crt") {
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = slurp(certs / ca);
    if (with_cert) {
      o.pem_private_key = slurp(certs / (who + ".key"));
      o.pem_cert_chain = slurp(certs / (who + ".crt"));
    }
    grpc::ChannelArguments args;
    args.SetMaxSendMessageSize(64 << 20);  // so that the server's own cap is what refuses
    return v1::Hetal::NewStub(grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                                        grpc::SslCredentials(o), args));
  }

  /// Test objects made under the TB13 parameters: the parameters file and a 2-ciphertext batch.
  struct Objects {
    std::string params, batch, secret;
    v1::ObjectRef params_ref, batch_ref;
  };
  static Objects objects() {
    Objects o;
    const ckks::Context ctx(ckks::Parameters::preset(ckks::Preset::TB13_INSECURE),
                            ckks::SecurityPolicy::allow_insecure);
    std::ostringstream ps, bs, ss;
    ckks::save_parameters(ctx.params(), ps);
    ckks::KeyGenerator kg(ctx);
    const auto sk = kg.secret_key();
    ckks::save(ctx, sk, ss);
    const ckks::Encoder enc(ctx);
    ckks::Encryptor e(ctx, sk);
    const double scale = std::ldexp(1.0, ctx.params().log_scale);
    for (int i = 0; i < 2; ++i) {
      const std::vector<double> v(8, 0.5 * i);
      ckks::save(ctx, e.encrypt(enc.encode(v, ctx.max_level(), scale)), bs);
    }
    o.params = ps.str();
    o.batch = bs.str();
    o.secret = ss.str();
    o.params_ref.set_sha256(sha_hex(o.params));
    o.params_ref.set_size(o.params.size());
    o.params_ref.set_kind(v1::PARAMETERS);
    o.batch_ref.set_sha256(sha_hex(o.batch));
    o.batch_ref.set_size(o.batch.size());
    o.batch_ref.set_kind(v1::TRAIN_BATCH);
    o.batch_ref.set_count(2);
    o.batch_ref.set_parameters_sha256(o.params_ref.sha256());
    return o;
  }

  /// Sends `data` from `offset` in chunks of `chunk` bytes; finish on the last when asked.
  static grpc::Status write(v1::Hetal::Stub& s, const v1::ObjectRef& ref, const std::string& data,
                            std::uint64_t offset, bool finish, std::size_t chunk = 64 << 10,
                            std::uint64_t* committed = nullptr) {
    grpc::ClientContext c;
    v1::WriteResponse resp;
    auto w = s.Write(&c, &resp);
    std::uint64_t at = 0;
    bool first = true;
    do {
      v1::WriteRequest r;
      if (first) *r.mutable_object() = ref;
      first = false;
      const std::size_t n = std::min<std::size_t>(chunk, data.size() - at);
      r.set_write_offset(offset + at);
      r.set_data(data.substr(at, n));
      at += n;
      r.set_finish_write(finish && at == data.size());
      if (!w->Write(r)) break;
    } while (at < data.size());
    w->WritesDone();
    const grpc::Status st = w->Finish();
    if (committed) *committed = resp.committed_size();
    return st;
  }
  /// The committed size, asked again while a (cut) stream still holds the object, as the
  /// client does.
  static std::pair<std::uint64_t, bool> query(v1::Hetal::Stub& s, const v1::ObjectRef& ref) {
    for (int attempt = 0;; ++attempt) {
      grpc::ClientContext c;
      v1::QueryWriteStatusRequest q;
      *q.mutable_object() = ref;
      v1::QueryWriteStatusResponse r;
      const auto st = s.QueryWriteStatus(&c, q, &r);
      if (st.error_code() == StatusCode::ABORTED && attempt < 50) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      EXPECT_TRUE(st.ok()) << st.error_message();
      return {r.committed_size(), r.complete()};
    }
  }
  static void upload(v1::Hetal::Stub& s, const v1::ObjectRef& ref, const std::string& data) {
    const auto st = write(s, ref, data, 0, true);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
};

#define EXPECT_REFUSED(status, code, text)                                             \
  do {                                                                                 \
    const grpc::Status s_ = (status);                                                  \
    EXPECT_EQ(s_.error_code(), code) << s_.error_message();                            \
    EXPECT_NE(s_.error_message().find(text), std::string::npos) << s_.error_message(); \
  } while (0)

TEST_F(GrpcService, UploadCutHalfwayResumesFromTheCommittedSize) {
  const fs::path dir = root / "resume";
  ServerProcess srv(dir, certs, {"--insecure"});
  auto s = stub(srv.port, "tenant-a");
  const Objects o = objects();
  upload(*s, o.params_ref, o.params);
  // First half only, stream closed without finish_write: the connection "was cut".
  const std::size_t half = o.batch.size() / 2;
  std::uint64_t committed = 0;
  ASSERT_TRUE(write(*s, o.batch_ref, o.batch.substr(0, half), 0, false, 64 << 10, &committed).ok());
  EXPECT_EQ(committed, half);
  EXPECT_EQ(query(*s, o.batch_ref), std::make_pair(std::uint64_t{half}, false));
  // A client that cancels its stream mid-way: what arrived stays committed, no more.
  {
    grpc::ClientContext c;
    v1::WriteResponse resp;
    auto w = s->Write(&c, &resp);
    v1::WriteRequest r;
    *r.mutable_object() = o.batch_ref;
    r.set_write_offset(half);
    r.set_data(o.batch.substr(half, 1000));
    w->Write(r);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    c.TryCancel();
    w->Finish();
  }
  const auto [at, done] = query(*s, o.batch_ref);
  ASSERT_FALSE(done);
  ASSERT_GE(at, half);
  ASSERT_LE(at, half + 1000);
  // Resume at the committed size; the object is then complete and a second upload sends nothing.
  const grpc::Status resumed = write(*s, o.batch_ref, o.batch.substr(at), at, true);
  ASSERT_TRUE(resumed.ok()) << resumed.error_message();
  EXPECT_EQ(query(*s, o.batch_ref), std::make_pair(std::uint64_t{o.batch.size()}, true));
  EXPECT_TRUE(srv.alive());
}

TEST_F(GrpcService, MalformedUploadsAreRefusedAndTheServerServesOn) {
  const fs::path dir = root / "refusals";
  ServerProcess srv(dir, certs, {"--insecure"});
  auto s = stub(srv.port, "tenant-a");
  const Objects o = objects();
  upload(*s, o.params_ref, o.params);
  // An offset that is not the committed size.
  EXPECT_REFUSED(write(*s, o.batch_ref, o.batch.substr(0, 100), 50, false),
                 StatusCode::INVALID_ARGUMENT, "write_offset 50 differs from the committed size 0");
  // A declared size beyond what two ciphertexts under these parameters can have.
  v1::ObjectRef big = o.batch_ref;
  big.set_size(std::uint64_t{1} << 40);
  EXPECT_REFUSED(write(*s, big, "x", 0, false), StatusCode::INVALID_ARGUMENT, "has at most");
  // Counts out of range, a malformed sha, an unknown kind, parameters never uploaded.
  v1::ObjectRef bad = o.batch_ref;
  bad.set_count(1 << 20);
  EXPECT_REFUSED(write(*s, bad, "x", 0, false), StatusCode::INVALID_ARGUMENT, "out of range");
  bad = o.batch_ref;
  bad.set_sha256("../../../../etc/passwd");
  EXPECT_REFUSED(write(*s, bad, "x", 0, false), StatusCode::INVALID_ARGUMENT, "64 lowercase hex");
  bad = o.batch_ref;
  bad.set_kind(static_cast<v1::ObjectKind>(77));
  EXPECT_REFUSED(write(*s, bad, "x", 0, false), StatusCode::INVALID_ARGUMENT, "kind");
  bad = o.batch_ref;
  bad.set_parameters_sha256(std::string(64, 'a'));
  EXPECT_REFUSED(write(*s, bad, "x", 0, false), StatusCode::FAILED_PRECONDITION, "not uploaded");
  // A message beyond the 4 MiB cap (the stub here allows 64 MiB: the server refuses).
  v1::ObjectRef huge = o.batch_ref;
  const std::string five(5 << 20, 'x');
  huge.set_sha256(sha_hex(five));
  huge.set_size(five.size());
  huge.set_count(64);
  EXPECT_EQ(write(*s, huge, five, 0, true, five.size()).error_code(),
            StatusCode::RESOURCE_EXHAUSTED);
  // More bytes than declared.
  v1::ObjectRef small = o.batch_ref;
  small.set_size(10);
  EXPECT_REFUSED(write(*s, small, o.batch.substr(0, 20), 0, false), StatusCode::OUT_OF_RANGE,
                 "past the object's declared size");
  // finish_write before the declared size is reached.
  v1::ObjectRef trunc = o.batch_ref;
  trunc.set_sha256(sha_hex(o.batch + "x"));
  trunc.set_size(o.batch.size() + 1);
  EXPECT_REFUSED(write(*s, trunc, o.batch, 0, true), StatusCode::FAILED_PRECONDITION,
                 "finish_write at");
  // A truncated object with the right hash of what was sent: its objects' lengths do not fit.
  const std::string cut = o.batch.substr(0, o.batch.size() - 100);
  v1::ObjectRef tref = o.batch_ref;
  tref.set_sha256(sha_hex(cut));
  tref.set_size(cut.size());
  EXPECT_REFUSED(write(*s, tref, cut, 0, true), StatusCode::INVALID_ARGUMENT, "truncated");
  // A corrupted byte: the SHA-256 does not match; nothing is kept.
  std::string bent = o.batch;
  bent[bent.size() / 2] ^= 1;
  EXPECT_REFUSED(write(*s, o.batch_ref, bent, 0, true), StatusCode::DATA_LOSS, "SHA-256");
  EXPECT_EQ(query(*s, o.batch_ref), std::make_pair(std::uint64_t{0}, false));
  // A secret key, whatever kind it claims to be.
  for (const auto kind : {v1::PUBLIC_KEY, v1::TRAIN_BATCH}) {
    v1::ObjectRef sref = o.batch_ref;
    sref.set_kind(kind);
    sref.set_sha256(sha_hex(o.secret));
    sref.set_size(o.secret.size());
    sref.set_count(kind == v1::TRAIN_BATCH ? 1 : 0);
    EXPECT_REFUSED(write(*s, sref, o.secret, 0, true), StatusCode::INVALID_ARGUMENT, "secret key");
  }
  // Not an object at all.
  const std::string junk(1000, 'j');
  v1::ObjectRef jref = o.batch_ref;
  jref.set_sha256(sha_hex(junk));
  jref.set_size(junk.size());
  EXPECT_REFUSED(write(*s, jref, junk, 0, true), StatusCode::INVALID_ARGUMENT, "bad header");
  // And the server still serves: the real batch goes through.
  upload(*s, o.batch_ref, o.batch);
  EXPECT_TRUE(query(*s, o.batch_ref).second);
  EXPECT_TRUE(srv.alive());
}

TEST_F(GrpcService, ForgedAndForeignJobIdsAreNotFound) {
  const fs::path dir = root / "ids";
  ServerProcess srv(dir, certs, {"--insecure"});
  auto a = stub(srv.port, "tenant-a"), b = stub(srv.port, "tenant-b");
  const Objects o = objects();
  upload(*a, o.params_ref, o.params);
  // Tenant b cannot see tenant a's objects either: content addresses are per tenant.
  {
    grpc::ClientContext c;
    v1::QueryWriteStatusRequest q;
    *q.mutable_object() = o.params_ref;
    v1::QueryWriteStatusResponse r;
    ASSERT_TRUE(b->QueryWriteStatus(&c, q, &r).ok());
    EXPECT_FALSE(r.complete());
  }
  for (const std::string& id :
       std::vector<std::string>{"", "../../tenants", std::string(32, '0'), std::string(32, 'G'),
                                std::string(33, 'a'), std::string("abc\0def", 7)}) {
    grpc::ClientContext c;
    v1::JobRef r;
    r.set_job_id(id);
    v1::Job j;
    EXPECT_REFUSED(a->GetJob(&c, r, &j), StatusCode::NOT_FOUND, "no such job");
    grpc::ClientContext c2;
    v1::ReadRequest rr;
    rr.set_job_id(id);
    rr.set_name("../../../objects");
    auto reader = a->Read(&c2, rr);
    v1::ReadResponse resp;
    EXPECT_FALSE(reader->Read(&resp));
    EXPECT_EQ(reader->Finish().error_code(), StatusCode::NOT_FOUND);
  }
  // A submit naming objects that were never uploaded makes no job.
  {
    grpc::ClientContext c;
    v1::SubmitRequest req;
    *req.mutable_spec()->mutable_parameters() = o.params_ref;
    *req.mutable_spec()->mutable_public_key() = o.batch_ref;
    v1::Job j;
    const auto st = a->Submit(&c, req, &j);
    EXPECT_FALSE(st.ok());
    EXPECT_TRUE(j.id().empty());
  }
  EXPECT_TRUE(srv.alive());
}

TEST_F(GrpcService, ClientsWithoutAValidCertificateAreRefused) {
  const fs::path dir = root / "tls";
  ServerProcess srv(dir, certs, {"--insecure"});
  const Objects o = objects();
  const auto probe = [&](v1::Hetal::Stub& s) {
    grpc::ClientContext c;
    c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::QueryWriteStatusRequest q;
    *q.mutable_object() = o.params_ref;
    v1::QueryWriteStatusResponse r;
    return s.QueryWriteStatus(&c, q, &r);
  };
  EXPECT_EQ(probe(*stub(srv.port, "tenant-a", false)).error_code(), StatusCode::UNAVAILABLE);
  EXPECT_EQ(probe(*stub(srv.port, "rogue")).error_code(), StatusCode::UNAVAILABLE);
  EXPECT_TRUE(probe(*stub(srv.port, "tenant-a")).ok());
  EXPECT_TRUE(srv.alive());
}

TEST_F(GrpcService, InsecureParametersNeedTheServersFlag) {
  const Objects o = objects();
  {
    ServerProcess srv(root / "secure", certs, {});
    auto s = stub(srv.port, "tenant-a");
    EXPECT_REFUSED(write(*s, o.params_ref, o.params, 0, true), StatusCode::FAILED_PRECONDITION,
                   "parameters refused");
    EXPECT_FALSE(query(*s, o.params_ref).second);
  }
  ServerProcess srv(root / "insecure", certs, {"--insecure"});
  auto s = stub(srv.port, "tenant-a");
  upload(*s, o.params_ref, o.params);
  EXPECT_TRUE(query(*s, o.params_ref).second);
}

TEST_F(GrpcService, StorageQuotaPerTenant) {
  const Objects o = objects();
  // Room for the parameters and half the batch.
  char gb[32];
  std::snprintf(gb, sizeof gb, "%.9f",
                static_cast<double>(o.params.size() + o.batch.size() / 2) / 1e9);
  ServerProcess srv(root / "quota", certs, {"--insecure", "--quota-gb", gb});
  auto s = stub(srv.port, "tenant-a");
  upload(*s, o.params_ref, o.params);
  EXPECT_REFUSED(write(*s, o.batch_ref, o.batch, 0, true), StatusCode::RESOURCE_EXHAUSTED, "quota");
  // Another tenant has its own quota.
  auto b = stub(srv.port, "tenant-b");
  upload(*b, o.params_ref, o.params);
}

TEST_F(GrpcService, UnfinishedUploadsReserveTheirDeclaredSize) {
  const Objects o = objects();
  char gb[32];  // room for the parameters and one batch, not two
  std::snprintf(gb, sizeof gb, "%.9f",
                static_cast<double>(o.params.size() + o.batch.size() * 3 / 2) / 1e9);
  ServerProcess srv(root / "reserve", certs, {"--insecure", "--quota-gb", gb});
  auto s = stub(srv.port, "tenant-a");
  upload(*s, o.params_ref, o.params);
  // A batch started and left unfinished holds its whole declared size...
  ASSERT_TRUE(write(*s, o.batch_ref, o.batch.substr(0, 100), 0, false).ok());
  // ... so a second object of that size does not fit beside it.
  v1::ObjectRef other = o.batch_ref;
  const std::string other_bytes = o.batch.substr(0, o.batch.size() - 8) + "xxxxxxxx";
  other.set_sha256(sha_hex(other_bytes));
  EXPECT_REFUSED(write(*s, other, other_bytes.substr(0, 100), 0, false),
                 StatusCode::RESOURCE_EXHAUSTED, "quota");
  // Resuming the same digest under a smaller declared size restarts it from 0: no write goes
  // past what is declared now.
  v1::ObjectRef shrunk = o.batch_ref;
  shrunk.set_size(10);
  EXPECT_EQ(query(*s, shrunk).first, 100u);
  EXPECT_REFUSED(write(*s, shrunk, std::string(20, 'x'), 100, false), StatusCode::INVALID_ARGUMENT,
                 "committed size 0");
  EXPECT_REFUSED(write(*s, shrunk, std::string(20, 'x'), 0, false), StatusCode::OUT_OF_RANGE,
                 "declared size 10");
  EXPECT_TRUE(srv.alive());
}

}  // namespace
