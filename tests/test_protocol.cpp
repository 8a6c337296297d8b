// The client / server protocol over files (protocol/protocol.h) at the insecure TB13 preset:
// a whole run (server on its own thread, sharing only the bundle directory), then the bundles
// a server must refuse: a secret key inside, keys from another keygen, malformed or truncated
// files, insecure parameters without the flag. (Resuming a killed server process is
// tests/protocol_resume.sh.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <thread>

#include "hetal/ckks/serialization.h"
#include "hetal/nn/lower_network.h"
#include "hetal/protocol/protocol.h"
#include "nn_util.h"
#include "train_util.h"

using namespace hetal;
namespace fs = std::filesystem;
using ::testing::HasSubstr;

namespace {
fs::path fresh_dir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("hetal-protocol-" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

protocol::TrainConfig small_config() {
  protocol::TrainConfig c;
  c.preset = "TB13-INSECURE";
  c.batch = 128;
  c.learning_rate = 1.0;
  c.max_epochs = 3;
  c.patience = 1;
  c.seed = 9;
  return c;
}

/// Keys and an encrypted upload of 3-class clusters (254 training rows: 2 batches).
struct Bundle {
  fs::path dir, client, bundle;
  train::Dataset data = hetal::test::clusters(290, 20, 3, 11);
  explicit Bundle(const std::string& name, const protocol::TrainConfig& cfg = small_config())
      : dir(fresh_dir(name)) {
    client = dir / "client";
    bundle = dir / "bundle";
    protocol::client_keygen(client.string(), bundle.string(), cfg, 20, 3, true);
    protocol::client_encrypt(client.string(), bundle.string(), data, "clusters", true);
  }
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

/// Runs `server` on its own thread beside `client`; the thread is joined even when the client
/// throws.
void beside(const std::function<void()>& server, const std::function<void()>& client) {
  std::thread t(server);
  try {
    client();
  } catch (...) {
    t.join();
    throw;
  }
  t.join();
}

/// The decrypted model `wm` of run `w` against the simulation trainer on the same split and
/// batches of `all`, and the best epoch's validation loss against the simulation's; returns the
/// validation rows.
train::Dataset expect_simulation_twin(const train::Dataset& all, const protocol::TrainConfig& cfg,
                                      const protocol::WatchResult& w, const matrix::Matrix& wm) {
  auto [tr, va] = train::split(all, cfg.validation_fraction, cfg.seed);
  train::TrainParams tp = protocol::plain_params(cfg);
  tp.max_epochs = w.best_epoch + 1;
  tp.patience = 0;
  tp.softmax = train::SoftmaxKind::simulation;
  const auto sim = train::train(tr, va, tp);
  EXPECT_LT(matrix::max_abs_diff(wm, sim.last_weights), 2e-3);
  EXPECT_NEAR(w.epochs[w.best_epoch].validation_loss, train::cross_entropy(sim.last_weights, va),
              1e-3);
  return va;
}

protocol::WaitOptions quick_wait() {
  protocol::WaitOptions w;
  w.timeout_s = 600;
  return w;
}
}  // namespace

TEST(Protocol, WholeRunThroughFiles) {
  Bundle b("run");
  EXPECT_EQ(fs::status(b.client / "secret.key").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  for (const auto& e : fs::recursive_directory_iterator(b.bundle))
    EXPECT_NE(e.path().filename(), "secret.key");
  {  // an ordinary job's meta.json is what servers before the lower-network mode read
    std::ifstream in(b.bundle / "meta.json");
    const std::string meta(std::istreambuf_iterator<char>(in), {});
    EXPECT_THAT(meta, HasSubstr("\"version\": 1"));
    EXPECT_THAT(meta, ::testing::Not(HasSubstr("lower_network_dim")));
  }
  protocol::ServerReport rep;
  protocol::WatchResult w;
  beside([&] { rep = protocol::server_train(b.bundle.string(), true, false, quick_wait()); },
         [&] {
           w = protocol::client_watch(b.client.string(), b.bundle.string(), true, quick_wait());
         });
  ASSERT_FALSE(w.epochs.empty());
  EXPECT_EQ(rep.epochs, w.epochs.size());
  EXPECT_TRUE(w.epochs.back().stop);
  EXPECT_EQ(rep.times.steps, 2 * rep.epochs);
  EXPECT_GT(rep.times.softmax, 0);
  EXPECT_GT(rep.times.bootstrap, 0);
  EXPECT_GT(rep.data_seconds, 0);  // each step read its batch from disk
  // The decrypted model is the simulation trainer's on the same split and batches.
  const matrix::Matrix wm =
      protocol::client_decrypt_model(b.client.string(), b.bundle.string(), true);
  // ... and the best epoch's validation numbers match the plain ones of the simulation run.
  const train::Dataset va = expect_simulation_twin(b.data, small_config(), w, wm);
  // Encrypted inference with the encrypted model.
  protocol::WaitOptions wi = quick_wait();
  matrix::Matrix logits;
  beside([&] { protocol::server_infer(b.bundle.string(), true, quick_wait()); },
         [&] {
           logits = protocol::client_predict_encrypted(b.client.string(), b.bundle.string(), va.x,
                                                       true, wi);
         });
  const matrix::Matrix want = matrix::multiply_abt(train::with_bias(va.x), wm);
  EXPECT_LT(matrix::max_abs_diff(logits, want), 1e-3);
  // The report and the plot hold what they claim.
  const std::string json = protocol::report_json(rep, w);
  EXPECT_THAT(json, HasSubstr("\"softmax\""));
  EXPECT_THAT(protocol::training_curve_svg(w, "t"), HasSubstr("<polyline"));
}

// The mode that never decrypts the lower network's outputs (CryptoTL's network, HETAL's head):
// the client uploads raw 20-dimensional features, the server runs its private network on every
// batch under encryption and trains the head on the 18 outputs. The decrypted head equals the
// plain simulation trained on the plain network's outputs, and so do the encrypted logits.
TEST(Protocol, HeadOnTheServersLowerNetwork) {
  const fs::path dir = fresh_dir("lower");
  const fs::path client = dir / "client", bundle = dir / "bundle", model = dir / "lower.bin";
  const nn::LowerNetwork net = hetal::test::random_network(20, 3);
  nn::save_lower_network(net, model.string());
  protocol::TrainConfig cfg = small_config();
  cfg.lower_network_dim = 20;
  EXPECT_EQ(protocol::lower_network_batch(cfg.preset, 20), 128u);  // 4096 slots / 32 per sample
  const train::Dataset data = hetal::test::clusters(290, 20, 3, 11);
  protocol::client_keygen(client.string(), bundle.string(), cfg, 20, 3, true);
  protocol::client_encrypt(client.string(), bundle.string(), data, "clusters", true);
  // meta.json marks the job (version 2: a server that predates the mode refuses it), and a
  // tampered mark is refused.
  const fs::path meta = bundle / "meta.json";
  const std::string text = [&] {
    std::ifstream in(meta);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  ASSERT_THAT(text, HasSubstr("\"version\": 2"));
  ASSERT_THAT(text, HasSubstr("\"lower_network_dim\": \"20\""));
  const auto tampered = [&](const std::string& from, const std::string& to) {
    std::string t = text;
    t.replace(t.find(from), from.size(), to);
    std::ofstream(meta) << t;
    const std::string e = error_of([&] {
      protocol::server_train(bundle.string(), true, false, quick_wait(), model.string());
    });
    std::ofstream(meta) << text;
    return e;
  };
  EXPECT_THAT(tampered("\"lower_network_dim\": \"20\"", "\"lower_network_dim\": \"22\""),
              HasSubstr("has 20 features, not 18"));
  EXPECT_THAT(tampered("\"lower_network_dim\": \"20\"", "\"lower_network_dim\": \"3\""),
              HasSubstr("lower network dimension 3 out of range"));
  EXPECT_THAT(tampered("\"version\": 2", "\"version\": 1"), HasSubstr("version 2 marks"));
  // A server without the network, or with one of another dimension, refuses the job.
  EXPECT_THAT(error_of([&] { protocol::server_train(bundle.string(), true, false, quick_wait()); }),
              HasSubstr("this server has none"));
  const fs::path other = dir / "other.bin";
  nn::save_lower_network(hetal::test::random_network(24, 4), other.string());
  EXPECT_THAT(error_of([&] {
                protocol::server_train(bundle.string(), true, false, quick_wait(), other.string());
              }),
              HasSubstr("takes 24 features, the job's data has 20"));

  protocol::ServerReport rep;
  protocol::WatchResult w;
  beside(
      [&] {
        rep = protocol::server_train(bundle.string(), true, false, quick_wait(), model.string());
      },
      [&] { w = protocol::client_watch(client.string(), bundle.string(), true, quick_wait()); });
  ASSERT_FALSE(w.epochs.empty());
  EXPECT_GT(rep.network_seconds, 0);  // the network ran on the batches
  const matrix::Matrix wm = protocol::client_decrypt_model(client.string(), bundle.string(), true);
  ASSERT_EQ(wm.rows, 3u);
  ASSERT_EQ(wm.cols, 19u);  // the network's 18 outputs and the bias
  // The plain pipeline: the plain network on every row, then the simulation trainer.
  const nn::FusedNetwork f = nn::fuse(net);
  train::Dataset through = data;
  const auto y = nn::forward(f, data.x.data, data.x.rows);
  through.x = matrix::Matrix(data.x.rows, 18);
  std::copy(y.begin(), y.end(), through.x.data.begin());
  const train::Dataset va = expect_simulation_twin(through, cfg, w, wm);
  // Encrypted inference runs the same network first; a partial batch's empty rows stay out.
  const auto [raw_tr, raw_va] = train::split(data, cfg.validation_fraction, cfg.seed);
  matrix::Matrix logits;
  beside([&] { protocol::server_infer(bundle.string(), true, quick_wait(), model.string()); },
         [&] {
           logits = protocol::client_predict_encrypted(client.string(), bundle.string(), raw_va.x,
                                                       true, quick_wait());
         });
  EXPECT_LT(matrix::max_abs_diff(logits, matrix::multiply_abt(train::with_bias(va.x), wm)), 1e-3);
}

// A learning rate far too large drives the logits out of the encrypted softmax's range, where
// its output is garbage: the client sees it in the first epoch's validation logits and stops
// the run on both sides, each with the reason, instead of returning a garbage model.
TEST(Protocol, DivergingRunIsStoppedOnBothSides) {
  protocol::TrainConfig cfg = small_config();
  cfg.learning_rate = 2000;
  Bundle b("diverge", cfg);
  std::string server_error;
  std::thread server([&] {
    server_error =
        error_of([&] { protocol::server_train(b.bundle.string(), true, false, quick_wait()); });
  });
  const std::string client_error = error_of(
      [&] { protocol::client_watch(b.client.string(), b.bundle.string(), true, quick_wait()); });
  server.join();
  EXPECT_THAT(client_error, HasSubstr("training diverged; lower the learning rate"));
  EXPECT_THAT(server_error, HasSubstr("the client stopped the run"));
  EXPECT_THAT(server_error, HasSubstr("training diverged"));
  EXPECT_FALSE(fs::exists(b.bundle / "done.json"));
  // The plain simulation refuses the same run at its first out-of-range step: here a weight
  // beyond the bound the model is bootstrapped under (step 1), before any logit leaves the
  // softmax's range.
  const auto [tr, va] = train::split(b.data, cfg.validation_fraction, cfg.seed);
  train::TrainParams tp = protocol::plain_params(cfg);
  tp.softmax = train::SoftmaxKind::simulation;
  EXPECT_THROW(train::train(tr, va, tp), train::WeightRangeError);
  tp.weight_bound = 0;  // unchecked: the logits leave the range at the next step
  EXPECT_THROW(train::train(tr, va, tp), train::LogitRangeError);
}

TEST(Protocol, ServerRefusesBadBundles) {
  Bundle b("bad");
  const std::string bundle = b.bundle.string();
  const auto train_now = [&] { protocol::server_train(bundle, true, false, quick_wait()); };
  // A secret key offered to the server, under any name.
  fs::copy_file(b.client / "secret.key", b.bundle / "keys" / "extra.bin");
  EXPECT_THAT(error_of(train_now), HasSubstr("is a secret key"));
  fs::remove(b.bundle / "keys" / "extra.bin");
  // Insecure parameters need the explicit flag.
  EXPECT_THAT(error_of([&] { protocol::server_train(bundle, false, false, quick_wait()); }),
              HasSubstr("is not 128-bit secure"));
  // Keys from another keygen.
  Bundle other("other");
  fs::copy_file(other.bundle / "keys" / "galois.key", b.bundle / "keys" / "galois.key",
                fs::copy_options::overwrite_existing);
  EXPECT_THAT(error_of(train_now), HasSubstr("key id mismatch"));
  // A key file changed inside its valid range (one coefficient + 1, saved as a well-formed
  // file) is not the client's either: the SHA-256 taken while loading catches it.
  Bundle e("altered");
  {
    const ckks::Context ctx(ckks::load_parameters_file((e.bundle / "keys" / "params.bin").string()),
                            ckks::SecurityPolicy::allow_insecure);
    const std::string path = (e.bundle / "keys" / "relin.key").string();
    auto rlk = ckks::load_file<rlwe::RelinKey>(ctx, path);
    std::uint64_t& w = rlk.key.b[0].limb(0)[7];
    w = (w + 1) % ctx.rns().q_primes()[0];
    ckks::save_file(ctx, rlk, path);
  }
  EXPECT_THAT(
      error_of([&] { protocol::server_train(e.bundle.string(), true, false, quick_wait()); }),
      HasSubstr("key id mismatch"));
  // ... and a bundle whose data the client made with other keys is not this client's.
  EXPECT_THAT(error_of([&] {
                protocol::client_watch(b.client.string(), other.bundle.string(), true,
                                       quick_wait());
              }),
              HasSubstr("not made with this client's keys"));
  // Malformed metadata.
  Bundle c("meta");
  std::ofstream(c.bundle / "meta.json") << "{\"format\": \"hetal-bundle\", \"version\": ";
  EXPECT_THAT(
      error_of([&] { protocol::server_train(c.bundle.string(), true, false, quick_wait()); }),
      HasSubstr("meta.json: malformed JSON"));
  fs::remove(c.bundle / "meta.json");
  EXPECT_THAT(
      error_of([&] { protocol::server_train(c.bundle.string(), true, false, quick_wait()); }),
      HasSubstr("meta.json: missing"));
  // A truncated data file is named.
  Bundle d("trunc");
  const fs::path f = d.bundle / "data" / "train-1.cts";
  fs::resize_file(f, fs::file_size(f) / 2);
  EXPECT_THAT(
      error_of([&] { protocol::server_train(d.bundle.string(), true, false, quick_wait()); }),
      HasSubstr("train-1.cts"));
}

TEST(Protocol, ClientRefusesDataThatDoesNotFitTheKeys) {
  const fs::path dir = fresh_dir("fit");
  protocol::client_keygen((dir / "c").string(), (dir / "b").string(), small_config(), 20, 3, true);
  const train::Dataset wrong = hetal::test::clusters(100, 21, 3, 1);
  EXPECT_THAT(error_of([&] {
                protocol::client_encrypt((dir / "c").string(), (dir / "b").string(), wrong, "",
                                         true);
              }),
              HasSubstr("21 features"));
  EXPECT_THAT(error_of([&] {
                protocol::client_keygen((dir / "c2").string(), (dir / "b2").string(),
                                        [] {
                                          auto c = small_config();
                                          c.batch = 4096;
                                          return c;
                                        }(),
                                        20, 3, true);
              }),
              HasSubstr("exceeds the block height"));
  // On the server's lower network a batch is one ciphertext of samples (32 slots each here).
  EXPECT_THAT(error_of([&] {
                auto c = small_config();
                c.lower_network_dim = 20;
                c.batch = 64;
                protocol::client_keygen((dir / "c3").string(), (dir / "b3").string(), c, 20, 3,
                                        true);
              }),
              HasSubstr("a batch is 65..128 rows at these parameters, not 64"));
  EXPECT_THAT(error_of([&] {
                auto c = small_config();
                c.lower_network_dim = 20;
                protocol::client_keygen((dir / "c4").string(), (dir / "b4").string(), c, 21, 3,
                                        true);
              }),
              HasSubstr("takes 20 features, the data has 21"));
}
