#include "hetal/protocol/protocol.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "hetal/ckks/encryptor.h"
#include "hetal/ckks/keygen.h"
#include "hetal/ckks/serialization.h"

namespace hetal::protocol {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

constexpr const char* kFormat = "hetal-bundle";
constexpr int kVersion = 1;
const char* kKeyFiles[] = {"public.key", "relin.key", "galois.key", "bootstrap.key"};

[[noreturn]] void fail(const std::string& msg) { throw ProtocolError(msg); }

ckks::Preset preset_from_name(const std::string& name) {
  if (name == "T13") return ckks::Preset::T13;
  if (name == "T14") return ckks::Preset::T14;
  if (name == "B16-H192") return ckks::Preset::B16_H192;
  if (name == "TB13-INSECURE") return ckks::Preset::TB13_INSECURE;
  fail("unknown preset '" + name + "' (choose B16-H192 or, for tests, TB13-INSECURE)");
}

const char* optimizer_name(train::Optimizer o) {
  return o == train::Optimizer::nesterov ? "nesterov" : "gd";
}
train::Optimizer optimizer_from(const std::string& s) {
  if (s == "nesterov") return train::Optimizer::nesterov;
  if (s == "gd") return train::Optimizer::gradient_descent;
  fail("unknown optimizer '" + s + "' (nesterov or gd)");
}

void write_text(const fs::path& path, const std::string& text) {
  ckks::detail::write_file_atomically(path.string(), false,
                                      [&](std::ostream& out) { out << text; });
}

json read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) fail(path.string() + ": cannot open");
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    fail(path.string() + ": malformed JSON: " + e.what());
  }
}

template <class T>
T field(const json& j, const char* key, const fs::path& from) {
  try {
    return j.at(key).get<T>();
  } catch (const json::exception&) {
    fail(from.string() + ": missing or malformed field '" + key + "'");
  }
}

ckks::Context open_context(const fs::path& params_file, bool insecure) {
  try {
    return ckks::Context(
        ckks::load_parameters_file(params_file.string()),
        insecure ? ckks::SecurityPolicy::allow_insecure : ckks::SecurityPolicy::require_128);
  } catch (const ckks::SerializationError& e) {
    fail(e.what());
  } catch (const std::exception& e) {
    fail(params_file.string() + ": " + e.what());
  }
}

template <class X>
X load_key(const ckks::Context& ctx, const fs::path& p, core::Sha256* hash = nullptr) {
  try {
    return ckks::load_file<X>(ctx, p.string(), hash);
  } catch (const ckks::SerializationError& e) {
    fail(e.what());
  }
}

/// The bundle's key file number i of kKeyFiles (the order the key id hashes them in).
std::string key_path(const fs::path& bundle, std::size_t i) {
  return (bundle / "keys" / kKeyFiles[i]).string();
}

/// Refuses a bundle holding a secret key: the server must never receive one.
void refuse_secret_keys(const fs::path& bundle) {
  if (!fs::is_directory(bundle)) fail(bundle.string() + ": no such bundle directory");
  for (const auto& e : fs::recursive_directory_iterator(bundle)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    unsigned char h[8] = {};
    in.read(reinterpret_cast<char*>(h), 8);
    if (in.gcount() == 8 && std::memcmp(h, "HETL", 4) == 0 && h[6] == 2 && h[7] == 0)
      fail(e.path().string() +
           " is a secret key: the server refuses bundles holding one (the secret key never "
           "leaves the client)");
  }
}

/// A list of ciphertexts (full or seeded) as one file of consecutive objects.
template <class C>
void save_cts(const ckks::Context& ctx, const std::vector<C>& cts, const fs::path& path) {
  ckks::detail::write_file_atomically(path.string(), false, [&](std::ostream& out) {
    for (const auto& c : cts) ckks::save(ctx, c, out);
  });
}

/// `count` ciphertexts (full or seeded objects, in any mix) from one file.
std::vector<ckks::Ciphertext> load_cts(const ckks::Context& ctx, const fs::path& path,
                                       std::size_t count) {
  std::vector<ckks::Ciphertext> out;
  try {
    ckks::detail::read_file(path.string(), [&](std::istream& in) {
      for (std::size_t i = 0; i < count; ++i) {
        unsigned char h[8] = {};
        const auto pos = in.tellg();
        in.read(reinterpret_cast<char*>(h), 8);
        if (in.gcount() != 8)
          fail(path.string() + ": holds " + std::to_string(i) + " ciphertexts, expected " +
               std::to_string(count));
        in.seekg(pos);
        if (h[6] == static_cast<unsigned char>(ckks::ObjectType::SeededCiphertext))
          out.push_back(ckks::expand(ctx, ckks::load_seeded_ciphertext(ctx, in)));
        else
          out.push_back(ckks::load_ciphertext(ctx, in));
      }
    });
  } catch (const ckks::SerializationError& e) {
    fail(e.what());
  }
  return out;
}

matrix::EncMatrix as_matrix(const matrix::Layout& l, std::vector<ckks::Ciphertext> cts,
                            const fs::path& from) {
  if (cts.size() != l.count())
    fail(from.string() + ": " + std::to_string(cts.size()) + " ciphertexts, the layout needs " +
         std::to_string(l.count()));
  matrix::EncMatrix m;
  m.layout = l;
  for (auto& c : cts) {
    if (c.slots != l.slots()) fail(from.string() + ": a ciphertext has the wrong slot count");
    const std::size_t lvl = c.level();
    m.blocks.push_back(matrix::Ct{std::move(c), lvl});
  }
  return m;
}

/// Waits for `path`; fails early when the other side left an error file.
void wait_for(const fs::path& path, const WaitOptions& w, const std::vector<fs::path>& errors) {
  const auto t0 = Clock::now();
  for (;;) {
    if (fs::exists(path)) return;
    for (const auto& e : errors) {
      if (fs::exists(e)) {
        std::ifstream in(e);
        std::string text((std::istreambuf_iterator<char>(in)), {});
        fail("the other side failed (" + e.string() + "): " + text);
      }
    }
    if (w.peer_alive && !w.peer_alive() && !fs::exists(path))
      fail("the other side exited before writing " + path.string());
    if (since(t0) > w.timeout_s)
      fail("timed out after " + std::to_string(static_cast<long>(w.timeout_s)) + " s waiting for " +
           path.string());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

struct Meta {
  TrainConfig cfg;
  train::Shape shape;
  std::vector<std::size_t> train_rows, val_rows;
  std::string key_id, description;
};

json config_json(const TrainConfig& c) {
  return {{"preset", c.preset},
          {"batch", c.batch},
          {"learning_rate", c.learning_rate},
          {"optimizer", optimizer_name(c.optimizer)},
          {"max_epochs", c.max_epochs},
          {"patience", c.patience},
          {"validation_fraction", c.validation_fraction},
          {"seed", c.seed},
          {"weight_bound", c.weight_bound}};
}

TrainConfig config_from(const json& j, const fs::path& from) {
  TrainConfig c;
  c.preset = field<std::string>(j, "preset", from);
  c.batch = field<std::size_t>(j, "batch", from);
  c.learning_rate = field<double>(j, "learning_rate", from);
  c.optimizer = optimizer_from(field<std::string>(j, "optimizer", from));
  c.max_epochs = field<std::size_t>(j, "max_epochs", from);
  c.patience = field<std::size_t>(j, "patience", from);
  c.validation_fraction = field<double>(j, "validation_fraction", from);
  c.seed = field<std::uint64_t>(j, "seed", from);
  c.weight_bound = field<double>(j, "weight_bound", from);
  if (c.batch == 0 || c.max_epochs == 0 || !(c.learning_rate > 0) || !(c.weight_bound > 0) ||
      !(c.validation_fraction > 0 && c.validation_fraction < 1))
    fail(from.string() + ": hyper-parameters out of range");
  return c;
}

Meta read_meta(const fs::path& bundle) {
  const fs::path p = bundle / "meta.json";
  if (!fs::exists(p)) fail(p.string() + ": missing (run `hetal client encrypt` first)");
  const json j = read_json(p);
  if (field<std::string>(j, "format", p) != kFormat || field<int>(j, "version", p) != kVersion)
    fail(p.string() + ": not a version-1 hetal bundle");
  Meta m;
  m.cfg = config_from(field<json>(j, "config", p), p);
  const json s = field<json>(j, "shape", p);
  m.shape = {field<std::size_t>(s, "features", p), field<std::size_t>(s, "classes", p),
             field<std::size_t>(s, "batch", p), field<std::size_t>(s, "slots", p)};
  try {
    m.shape.validate();
  } catch (const std::invalid_argument& e) {
    fail(p.string() + ": " + e.what());
  }
  m.train_rows = field<std::vector<std::size_t>>(j, "train_rows", p);
  m.val_rows = field<std::vector<std::size_t>>(j, "validation_rows", p);
  m.key_id = field<std::string>(j, "key_id", p);
  m.description = j.value("description", "");
  if (m.train_rows.empty() || m.val_rows.empty()) fail(p.string() + ": no batches");
  for (const auto* v : {&m.train_rows, &m.val_rows})
    for (std::size_t r : *v)
      if (r == 0 || r > m.shape.batch) fail(p.string() + ": a batch size is out of range");
  return m;
}

/// What the client keeps: config.json, params, secret key.
struct ClientState {
  TrainConfig cfg;
  std::size_t features = 0, classes = 0;
  std::string key_id;
};

ClientState read_client(const fs::path& client) {
  const fs::path p = client / "config.json";
  if (!fs::exists(p)) fail(p.string() + ": missing (run `hetal client keygen` first)");
  const json j = read_json(p);
  ClientState s;
  s.cfg = config_from(field<json>(j, "config", p), p);
  s.features = field<std::size_t>(j, "features", p);
  s.classes = field<std::size_t>(j, "classes", p);
  s.key_id = field<std::string>(j, "key_id", p);
  return s;
}

matrix::Matrix rows_of(const matrix::Matrix& m, std::size_t r0, std::size_t n) {
  matrix::Matrix out(n, m.cols);
  std::copy_n(m.data.begin() + static_cast<long>(r0 * m.cols), n * m.cols, out.data.begin());
  return out;
}

/// Encrypts m (rows x cols) in `layout` as seeded ciphertexts at `level`.
std::vector<ckks::SeededCiphertext> encrypt_seeded(const ckks::Context& ctx,
                                                   const ckks::Encoder& enc,
                                                   ckks::Encryptor& encryptor,
                                                   const matrix::Layout& layout,
                                                   const matrix::Matrix& m, std::size_t level) {
  std::vector<ckks::SeededCiphertext> out;
  for (const auto& pt : matrix::encode(enc, ctx, layout, m, level))
    out.push_back(encryptor.encrypt_seeded(pt));
  return out;
}

/// Decrypts ciphertexts in `layout`.
matrix::Matrix decrypt_matrix(const ckks::Context& ctx, const rlwe::SecretKey& sk,
                              const matrix::Layout& layout, std::vector<ckks::Ciphertext> cts,
                              const fs::path& from) {
  const ckks::Encoder enc(ctx);
  const ckks::Decryptor dec(ctx, sk);
  return matrix::decrypt(enc, dec, as_matrix(layout, std::move(cts), from));
}

/// The epoch whose model the client keeps (written by client_watch).
std::size_t best_epoch(const fs::path& client) {
  const fs::path hp = client / "history.json";
  if (!fs::exists(hp)) fail(hp.string() + ": missing (run `hetal client watch` first)");
  return field<std::size_t>(read_json(hp), "best_epoch", hp);
}

fs::path epoch_file(const fs::path& bundle, const char* kind, std::size_t e, const char* ext) {
  return bundle / "epochs" / (std::string(kind) + "-" + std::to_string(e) + ext);
}
}  // namespace

TrainConfig hetal_hyperparameters(const std::string& dataset) {
  struct Row {
    const char* name;
    double lr;
    std::size_t batch, epochs;
  };
  static constexpr Row kRows[] = {{"mnist", 2.0, 1024, 7},       {"fashion-mnist", 2.0, 1024, 7},
                                  {"cifar10", 1.0, 2048, 9},     {"facemask", 0.5, 512, 22},
                                  {"dermamnist", 0.3, 1024, 23}, {"snips", 1.0, 1024, 14}};
  for (const Row& r : kRows) {
    if (dataset == r.name) {
      TrainConfig c;
      c.learning_rate = r.lr;
      c.batch = r.batch;
      c.max_epochs = r.epochs;
      return c;
    }
  }
  fail("no HETAL hyper-parameters for '" + dataset +
       "' (mnist, fashion-mnist, cifar10, facemask, dermamnist, snips)");
}

train::TrainParams plain_params(const TrainConfig& cfg) {
  train::TrainParams tp;
  tp.learning_rate = cfg.learning_rate;
  tp.batch = cfg.batch;
  tp.max_epochs = cfg.max_epochs;
  tp.optimizer = cfg.optimizer;
  tp.patience = cfg.patience;
  tp.seed = cfg.seed;
  tp.batch_order = train::BatchOrder::fixed_batches;
  return tp;
}

// =================================================================================== client

double client_keygen(const std::string& client_dir, const std::string& bundle_dir,
                     const TrainConfig& cfg, std::size_t features, std::size_t classes,
                     bool insecure) {
  const auto t0 = Clock::now();
  const fs::path client(client_dir), bundle(bundle_dir);
  fs::create_directories(client);
  fs::create_directories(bundle / "keys");
  ckks::Context ctx = [&] {
    try {
      return ckks::Context(
          ckks::Parameters::preset(preset_from_name(cfg.preset)),
          insecure ? ckks::SecurityPolicy::allow_insecure : ckks::SecurityPolicy::require_128);
    } catch (const ProtocolError&) {
      throw;
    } catch (const std::exception& e) {
      fail(std::string("preset ") + cfg.preset + ": " + e.what());
    }
  }();
  const train::Shape shape{features, classes, cfg.batch, ctx.max_slots()};
  try {
    shape.validate();
  } catch (const std::invalid_argument& e) {
    fail(e.what());
  }
  ckks::save_parameters_file(ctx.params(), (client / "params.bin").string());
  ckks::save_parameters_file(ctx.params(), (bundle / "keys" / "params.bin").string());
  core::Sha256 key_hash;
  {
    ckks::KeyGenerator kg(ctx);
    const rlwe::SecretKey sk = kg.secret_key();
    ckks::save_file(ctx, sk, (client / "secret.key").string());  // mode 0600
    // The key id is the SHA-256 of the key files in kKeyFiles order, taken as they are written.
    ckks::save_file(ctx, kg.public_key(sk), key_path(bundle, 0), &key_hash);
    const rlwe::RelinKey rlk = kg.relin_key(sk);
    ckks::save_file(ctx, rlk, key_path(bundle, 1), &key_hash);
    {
      const rlwe::GaloisKeys gk = kg.galois_keys(sk, train::EncryptedTrainer::rotations(shape),
                                                 true, ctx.params().user_top_level());
      ckks::save_file(ctx, gk, key_path(bundle, 2), &key_hash);
    }
    const ckks::Encoder enc(ctx);
    const ckks::Evaluator ev(ctx);
    const circuits::Bootstrapper boot(ctx, enc, ev, rlk, {});
    const circuits::BootstrapKeys bk = boot.generate_keys(kg, sk);
    ckks::detail::write_file_atomically(
        key_path(bundle, 3), false, [&](std::ostream& out) { boot.save_keys(bk, out); }, &key_hash);
  }
  const json j = {{"config", config_json(cfg)},
                  {"features", features},
                  {"classes", classes},
                  {"key_id", key_hash.finish_hex()}};
  write_text(client / "config.json", j.dump(2));
  return since(t0);
}

UploadSummary client_encrypt(const std::string& client_dir, const std::string& bundle_dir,
                             const train::Dataset& all, const std::string& description,
                             bool insecure, const Progress& progress) {
  const auto t0 = Clock::now();
  const fs::path client(client_dir), bundle(bundle_dir);
  const ClientState cs = read_client(client);
  try {
    all.validate();
  } catch (const std::invalid_argument& e) {
    fail(e.what());
  }
  if (all.x.cols != cs.features || all.classes != cs.classes)
    fail("the data has " + std::to_string(all.x.cols) + " features and " +
         std::to_string(all.classes) + " classes; the keys were made for " +
         std::to_string(cs.features) + " and " + std::to_string(cs.classes));
  const ckks::Context ctx = open_context(client / "params.bin", insecure);
  const auto sk = load_key<rlwe::SecretKey>(ctx, client / "secret.key");
  const train::Shape shape{cs.features, cs.classes, cs.cfg.batch, ctx.max_slots()};
  auto [tr, va] = train::split(all, cs.cfg.validation_fraction, cs.cfg.seed);
  // A new upload starts a new session: nothing of an earlier run may be mistaken for this one's.
  for (const char* old : {"epochs", "server", "infer", "data", "done.json", "meta.json"})
    fs::remove_all(bundle / old);
  const ckks::Encoder enc(ctx);
  ckks::Encryptor encryptor(ctx, sk);
  fs::create_directories(bundle / "data");
  UploadSummary sum;
  sum.train_rows = tr.x.rows;
  sum.validation_rows = va.x.rows;
  const std::size_t top = ctx.params().user_top_level(), B = shape.batch;
  const matrix::Matrix xt = train::with_bias(tr.x), yt = train::one_hot(tr.y, cs.classes);
  const matrix::Matrix xv = train::with_bias(va.x);
  std::vector<std::size_t> train_rows, val_rows;
  const std::size_t nb = (tr.x.rows + B - 1) / B, nv = (va.x.rows + B - 1) / B;
  if (progress) progress(0, nb + nv, "batches encrypted");
  for (std::size_t b = 0; b < nb + nv; ++b) {
    const bool is_train = b < nb;
    const std::size_t r0 = (is_train ? b : b - nb) * B;
    const std::size_t n = std::min(B, (is_train ? tr.x.rows : va.x.rows) - r0);
    std::vector<ckks::SeededCiphertext> cts;
    if (is_train) {
      cts = encrypt_seeded(ctx, enc, encryptor, train::features_layout(shape, n),
                           rows_of(xt, r0, n), top);
      auto y = encrypt_seeded(ctx, enc, encryptor, train::labels_layout(shape, n),
                              rows_of(yt, r0, n), top);
      for (auto& c : y) cts.push_back(std::move(c));
      train_rows.push_back(n);
    } else {
      cts = encrypt_seeded(ctx, enc, encryptor, train::features_layout(shape, n),
                           rows_of(xv, r0, n), train::EncryptedTrainer::kInferenceLevel);
      val_rows.push_back(n);
    }
    const fs::path f =
        bundle / "data" /
        ((is_train ? "train-" + std::to_string(b) : "val-" + std::to_string(b - nb)) + ".cts");
    save_cts(ctx, cts, f);
    sum.ciphertexts += cts.size();
    sum.bytes += fs::file_size(f);
    if (progress) progress(b + 1, nb + nv, "batches encrypted");
  }
  sum.train_batches = nb;
  write_text(client / "validation.json", json{{"labels", va.y}}.dump());
  const json meta = {{"format", kFormat},
                     {"version", kVersion},
                     {"config", config_json(cs.cfg)},
                     {"shape",
                      {{"features", shape.features},
                       {"classes", shape.classes},
                       {"batch", shape.batch},
                       {"slots", shape.slots}}},
                     {"train_rows", train_rows},
                     {"validation_rows", val_rows},
                     {"key_id", cs.key_id},
                     {"description", description}};
  write_text(bundle / "meta.json", meta.dump(2));
  sum.seconds = since(t0);
  return sum;
}

namespace {
/// The client's answer after an epoch: stop or go on; an "abort" (the client found the run
/// broken) ends the server's run with the client's reason.
bool read_decision(const fs::path& dec) {
  const json d = read_json(dec);
  if (d.contains("abort"))
    fail("the client stopped the run (" + dec.string() +
         "): " + field<std::string>(d, "abort", dec));
  return field<bool>(d, "stop", dec);
}
}  // namespace

WatchResult client_watch(const std::string& client_dir, const std::string& bundle_dir,
                         bool insecure, const WaitOptions& wait) {
  const fs::path client(client_dir), bundle(bundle_dir);
  const ClientState cs = read_client(client);
  const Meta meta = read_meta(bundle);
  if (meta.key_id != cs.key_id) fail("the bundle was not made with this client's keys");
  const ckks::Context ctx = open_context(client / "params.bin", insecure);
  const auto sk = load_key<rlwe::SecretKey>(ctx, client / "secret.key");
  const auto labels = field<std::vector<std::size_t>>(read_json(client / "validation.json"),
                                                      "labels", client / "validation.json");
  const std::vector<fs::path> errors = {bundle / "server" / "error.txt"};
  WatchResult res;
  double best = std::numeric_limits<double>::infinity();
  std::size_t since_best = 0;
  for (std::size_t e = 0; e < meta.cfg.max_epochs; ++e) {
    const fs::path vf = epoch_file(bundle, "val", e, ".cts");
    wait_for(vf, wait, errors);
    // All validation batches' logits, in order.
    std::size_t blocks = 0;
    for (std::size_t r : meta.val_rows) blocks += train::logits_layout(meta.shape, r).count();
    auto cts = load_cts(ctx, vf, blocks);
    matrix::Matrix logits(labels.size(), meta.shape.classes);
    std::size_t at = 0, row = 0;
    for (std::size_t r : meta.val_rows) {
      const auto l = train::logits_layout(meta.shape, r);
      std::vector<ckks::Ciphertext> part(
          std::make_move_iterator(cts.begin() + static_cast<long>(at)),
          std::make_move_iterator(cts.begin() + static_cast<long>(at + l.count())));
      at += l.count();
      const matrix::Matrix m = decrypt_matrix(ctx, sk, l, std::move(part), vf);
      std::copy(m.data.begin(), m.data.end(),
                logits.data.begin() + static_cast<long>(row * logits.cols));
      row += r;
    }
    if (row != labels.size()) fail(vf.string() + ": validation rows do not match the labels");
    EpochResult er;
    er.epoch = e;
    std::tie(er.validation_loss, er.validation_accuracy) =
        train::logits_loss_accuracy(logits, labels);
    // A run that cannot go on is stopped on both sides: the decision tells the server why (so it
    // exits with the reason instead of waiting), then the client fails with it.
    const auto abort_run = [&](const std::string& why) {
      write_text(epoch_file(bundle, "decision", e, ".json"),
                 json{{"stop", true}, {"abort", why}}.dump());
      fail(vf.string() + ": " + why);
    };
    if (!std::isfinite(er.validation_loss))
      abort_run("the validation logits do not decrypt to finite values");
    // The server's softmax approximates on [-R, R] only; logits beyond it mean the training
    // steps' softmax left its range too and the model is garbage.
    try {
      train::check_logit_range(logits.data);
    } catch (const train::LogitRangeError& err) {
      abort_run("epoch " + std::to_string(e + 1) + ": " + err.what() +
                ": training diverged; lower the learning rate");
    }
    if (er.validation_loss < best) {
      best = er.validation_loss;
      res.best_epoch = e;
      since_best = 0;
    } else {
      ++since_best;
    }
    er.stop =
        (meta.cfg.patience && since_best >= meta.cfg.patience) || e + 1 == meta.cfg.max_epochs;
    res.epochs.push_back(er);
    json hist = json::array();
    for (const auto& x : res.epochs)
      hist.push_back({{"epoch", x.epoch},
                      {"validation_loss", x.validation_loss},
                      {"validation_accuracy", x.validation_accuracy}});
    write_text(client / "history.json",
               json{{"epochs", hist}, {"best_epoch", res.best_epoch}}.dump(2));
    write_text(epoch_file(bundle, "decision", e, ".json"), json{{"stop", er.stop}}.dump());
    if (wait.progress) wait.progress(e + 1, meta.cfg.max_epochs, "epochs answered");
    if (er.stop) break;
  }
  wait_for(bundle / "done.json", wait, errors);
  return res;
}

matrix::Matrix client_decrypt_model(const std::string& client_dir, const std::string& bundle_dir,
                                    bool insecure) {
  const fs::path client(client_dir), bundle(bundle_dir);
  const ClientState cs = read_client(client);
  const Meta meta = read_meta(bundle);
  const ckks::Context ctx = open_context(client / "params.bin", insecure);
  const auto sk = load_key<rlwe::SecretKey>(ctx, client / "secret.key");
  const std::size_t best = best_epoch(client);
  const fs::path mf = epoch_file(bundle, "model", best, ".cts");
  const auto cts = load_cts(ctx, mf, meta.shape.compact_count());
  const ckks::Encoder enc(ctx);
  const ckks::Decryptor dec(ctx, sk);
  std::vector<std::vector<double>> slots;
  for (const auto& c : cts) slots.push_back(enc.decode_real(dec.decrypt(c)));
  return train::unpack_compact(meta.shape, slots, cs.cfg.weight_bound);
}

matrix::Matrix client_predict_encrypted(const std::string& client_dir,
                                        const std::string& bundle_dir, const matrix::Matrix& x,
                                        bool insecure, const WaitOptions& wait) {
  const fs::path client(client_dir), bundle(bundle_dir), dir = bundle / "infer";
  const ClientState cs = read_client(client);
  const Meta meta = read_meta(bundle);
  if (x.cols != cs.features)
    fail("the test data has " + std::to_string(x.cols) + " features, the model " +
         std::to_string(cs.features));
  const ckks::Context ctx = open_context(client / "params.bin", insecure);
  const auto sk = load_key<rlwe::SecretKey>(ctx, client / "secret.key");
  const std::size_t best = best_epoch(client);
  fs::remove_all(dir);
  fs::create_directories(dir);
  const ckks::Encoder enc(ctx);
  ckks::Encryptor encryptor(ctx, sk);
  const matrix::Matrix xb = train::with_bias(x);
  const std::size_t B = meta.shape.batch, nb = (x.rows + B - 1) / B;
  std::vector<std::size_t> rows;
  if (wait.progress) wait.progress(0, nb, "test batches encrypted");
  for (std::size_t b = 0; b < nb; ++b) {
    const std::size_t n = std::min(B, x.rows - b * B);
    save_cts(ctx,
             encrypt_seeded(ctx, enc, encryptor, train::features_layout(meta.shape, n),
                            rows_of(xb, b * B, n), train::EncryptedTrainer::kInferenceLevel),
             dir / ("x-" + std::to_string(b) + ".cts"));
    rows.push_back(n);
    if (wait.progress) wait.progress(b + 1, nb, "test batches encrypted");
  }
  write_text(dir / "request.json", json{{"epoch", best}, {"rows", rows}}.dump());
  wait_for(dir / "done.json", wait, {dir / "error.txt"});
  matrix::Matrix out(x.rows, cs.classes);
  for (std::size_t b = 0; b < nb; ++b) {
    const auto l = train::logits_layout(meta.shape, rows[b]);
    const fs::path f = dir / ("logits-" + std::to_string(b) + ".cts");
    const matrix::Matrix m = decrypt_matrix(ctx, sk, l, load_cts(ctx, f, l.count()), f);
    std::copy(m.data.begin(), m.data.end(), out.data.begin() + static_cast<long>(b * B * out.cols));
  }
  return out;
}

// =================================================================================== server

namespace {
/// Everything the server loads from a bundle.
struct ServerSide {
  Meta meta;
  ckks::Context ctx;
  ckks::Encoder enc{ctx};
  ckks::Evaluator ev{ctx};
  rlwe::PublicKey pk;
  rlwe::RelinKey rlk;
  rlwe::GaloisKeys gk;
  circuits::BootstrapKeys bk;
  std::unique_ptr<circuits::Bootstrapper> boot;

  ServerSide(const fs::path& bundle, bool insecure)
      : meta((refuse_secret_keys(bundle), read_meta(bundle))),
        ctx(open_context(bundle / "keys" / "params.bin", insecure)) {
    if (meta.shape.slots != ctx.max_slots())
      fail((bundle / "meta.json").string() + ": slot count does not match the parameters");
    // Each key file is hashed while it is loaded (one read per file); the id is checked once
    // all four are in.
    core::Sha256 key_hash;
    pk = load_key<rlwe::PublicKey>(ctx, key_path(bundle, 0), &key_hash);
    rlk = load_key<rlwe::RelinKey>(ctx, key_path(bundle, 1), &key_hash);
    gk = load_key<rlwe::GaloisKeys>(ctx, key_path(bundle, 2), &key_hash);
    boot = std::make_unique<circuits::Bootstrapper>(ctx, enc, ev, rlk,
                                                    circuits::BootstrapParameters{});
    try {
      ckks::detail::read_file(
          key_path(bundle, 3), [&](std::istream& in) { bk = boot->load_keys(in); }, &key_hash);
    } catch (const ckks::SerializationError& e) {
      fail(e.what());
    }
    if (key_hash.finish_hex() != meta.key_id)
      fail(bundle.string() +
           "/keys: the keys are not the ones the client generated for this bundle (key id "
           "mismatch)");
  }
  train::EncryptedTrainParams params() const {
    train::EncryptedTrainParams p;
    p.learning_rate = meta.cfg.learning_rate;
    p.optimizer = meta.cfg.optimizer;
    p.weight_bound = meta.cfg.weight_bound;
    return p;
  }
};

void with_error_file(const fs::path& error_file, const std::function<void()>& f) {
  fs::remove(error_file);
  try {
    f();
  } catch (const std::exception& e) {
    std::error_code ec;
    fs::create_directories(error_file.parent_path(), ec);
    std::ofstream(error_file) << e.what() << "\n";
    throw;
  }
}
}  // namespace

ServerReport server_train(const std::string& bundle_dir, bool insecure, bool resume,
                          const WaitOptions& wait) {
  const fs::path bundle(bundle_dir), sdir = bundle / "server";
  ServerReport rep;
  with_error_file(sdir / "error.txt", [&] {
    const auto t0 = Clock::now();
    ServerSide s(bundle, insecure);
    const Meta& m = s.meta;
    fs::create_directories(sdir);
    fs::create_directories(bundle / "epochs");
    // Training and validation data stay on disk: each step reads its own batch, so memory is
    // bounded by the step, not by the data set (issue 13). Every file is read once here, one
    // at a time, so that a malformed one is named before hours of training, not at its step.
    const auto load_batch = [&](std::size_t b) {
      const fs::path f = bundle / "data" / ("train-" + std::to_string(b) + ".cts");
      const auto xl = train::features_layout(m.shape, m.train_rows[b]);
      const auto yl = train::labels_layout(m.shape, m.train_rows[b]);
      auto cts = load_cts(s.ctx, f, xl.count() + yl.count());
      std::vector<ckks::Ciphertext> y(
          std::make_move_iterator(cts.begin() + static_cast<long>(xl.count())),
          std::make_move_iterator(cts.end()));
      cts.resize(xl.count());
      train::EncryptedBatch eb;
      eb.rows = m.train_rows[b];
      eb.x = as_matrix(xl, std::move(cts), f);
      eb.y = as_matrix(yl, std::move(y), f);
      return eb;
    };
    const auto load_val = [&](std::size_t b) {
      const fs::path f = bundle / "data" / ("val-" + std::to_string(b) + ".cts");
      const auto l = train::features_layout(m.shape, m.val_rows[b]);
      return as_matrix(l, load_cts(s.ctx, f, l.count()), f);
    };
    for (std::size_t b = 0; b < m.train_rows.size(); ++b) load_batch(b);
    for (std::size_t b = 0; b < m.val_rows.size(); ++b) load_val(b);
    train::EncryptedTrainer trainer(s.ctx, s.enc, s.ev, s.rlk, s.gk, *s.boot, s.bk, m.shape,
                                    s.params());
    std::size_t start = 0;
    const fs::path ck = sdir / "checkpoint.json";
    if (resume && fs::exists(ck)) {
      const json j = read_json(ck);
      const auto done = field<std::size_t>(j, "epoch_done", ck);
      train::TrainerState st;
      st.steps = field<std::size_t>(j, "steps", ck);
      st.model = load_cts(s.ctx, sdir / "model.cts", m.shape.compact_count());
      st.look = load_cts(s.ctx, sdir / "look.cts", m.shape.compact_count());
      trainer.set_state(std::move(st));
      start = done + 1;
      rep.resumed_from = start;
    } else {
      ckks::Encryptor pub(s.ctx, s.pk);
      trainer.init(pub);
      // A fresh run: earlier epochs' messages and checkpoints are not this run's.
      fs::remove(ck);
      fs::remove(bundle / "done.json");
      for (const auto& e : fs::directory_iterator(bundle / "epochs")) fs::remove(e.path());
    }
    rep.setup_seconds = since(t0);
    const std::size_t nb = m.train_rows.size(), total = m.cfg.max_epochs * nb;
    bool stop = false;
    if (start > 0) {
      // Killed while waiting for (or after) the last checkpointed epoch's decision.
      const fs::path dec = epoch_file(bundle, "decision", start - 1, ".json");
      wait_for(dec, wait, {});
      stop = read_decision(dec);
    }
    if (wait.progress) wait.progress(start * nb, total, "training steps");
    for (std::size_t e = start; e < m.cfg.max_epochs && !stop; ++e) {
      const auto te = Clock::now();
      const auto order = train::batch_order(nb, m.cfg.seed, e);
      for (std::size_t i = 0; i < nb; ++i) {
        const auto tl = Clock::now();
        const train::EncryptedBatch batch = load_batch(order[i]);
        rep.data_seconds += since(tl);
        trainer.step(batch);
        if (wait.progress) wait.progress(e * nb + i + 1, total, "training steps");
      }
      const auto tv = Clock::now();
      std::vector<ckks::Ciphertext> logits;
      for (std::size_t b = 0; b < m.val_rows.size(); ++b)
        for (auto& c : trainer.logits(load_val(b)).blocks) logits.push_back(std::move(c.c));
      rep.validation_seconds += since(tv);
      save_cts(s.ctx, trainer.state().model, epoch_file(bundle, "model", e, ".cts"));
      // Checkpoint: the state first, then the record that names it.
      save_cts(s.ctx, trainer.state().model, sdir / "model.cts");
      save_cts(s.ctx, trainer.state().look, sdir / "look.cts");
      write_text(ck, json{{"epoch_done", e}, {"steps", trainer.state().steps}}.dump());
      save_cts(s.ctx, logits, epoch_file(bundle, "val", e, ".cts"));
      rep.epoch_seconds.push_back(since(te));
      ++rep.epochs;
      const fs::path dec = epoch_file(bundle, "decision", e, ".json");
      wait_for(dec, wait, {});
      stop = read_decision(dec);
      rep.stopped_early = stop && e + 1 < m.cfg.max_epochs;
    }
    rep.times = trainer.times();
    write_text(sdir / "report.json", report_json(rep, {}));
    write_text(bundle / "done.json", json{{"epochs", rep.epochs}}.dump());
  });
  return rep;
}

void server_infer(const std::string& bundle_dir, bool insecure, const WaitOptions& wait) {
  const fs::path bundle(bundle_dir), dir = bundle / "infer";
  with_error_file(bundle / "server" / "infer-error.txt", [&] {
    ServerSide s(bundle, insecure);
    wait_for(dir / "request.json", wait, {});
    const json req = read_json(dir / "request.json");
    const auto epoch = field<std::size_t>(req, "epoch", dir / "request.json");
    const auto rows = field<std::vector<std::size_t>>(req, "rows", dir / "request.json");
    const auto model =
        load_cts(s.ctx, epoch_file(bundle, "model", epoch, ".cts"), s.meta.shape.compact_count());
    train::EncryptedTrainer trainer(s.ctx, s.enc, s.ev, s.rlk, s.gk, *s.boot, s.bk, s.meta.shape,
                                    s.params());
    if (wait.progress) wait.progress(0, rows.size(), "test batches");
    for (std::size_t b = 0; b < rows.size(); ++b) {
      if (rows[b] == 0 || rows[b] > s.meta.shape.batch)
        fail((dir / "request.json").string() + ": a batch size is out of range");
      const fs::path f = dir / ("x-" + std::to_string(b) + ".cts");
      const auto l = train::features_layout(s.meta.shape, rows[b]);
      std::vector<ckks::Ciphertext> out;
      for (auto& c : trainer.logits(as_matrix(l, load_cts(s.ctx, f, l.count()), f), &model).blocks)
        out.push_back(std::move(c.c));
      save_cts(s.ctx, out, dir / ("logits-" + std::to_string(b) + ".cts"));
      if (wait.progress) wait.progress(b + 1, rows.size(), "test batches");
    }
    write_text(dir / "done.json", "{}");
  });
}

// ================================================================================== reports

std::string report_json(const ServerReport& r, const WatchResult& w) {
  const auto& t = r.times;
  const double steps = t.steps ? static_cast<double>(t.steps) : 1.0;
  json j = {{"setup_seconds", r.setup_seconds},
            {"epochs", r.epochs},
            {"resumed_from_epoch", r.resumed_from},
            {"stopped_early", r.stopped_early},
            {"epoch_seconds", r.epoch_seconds},
            {"validation_seconds", r.validation_seconds},
            {"data_seconds", r.data_seconds},
            {"steps", t.steps},
            {"seconds",
             {{"matrix_products", t.matmul},
              {"softmax", t.softmax},
              {"bootstrapping", t.bootstrap},
              {"other", t.other},
              {"total", t.total()}}},
            {"seconds_per_step",
             {{"matrix_products", t.matmul / steps},
              {"softmax", t.softmax / steps},
              {"bootstrapping", t.bootstrap / steps},
              {"other", t.other / steps},
              {"total", t.total() / steps}}},
            {"bootstraps", {{"softmax", t.softmax_bootstraps}, {"model", t.model_bootstraps}}}};
  if (!w.epochs.empty()) {
    json e = json::array();
    for (const auto& x : w.epochs)
      e.push_back({{"epoch", x.epoch},
                   {"validation_loss", x.validation_loss},
                   {"validation_accuracy", x.validation_accuracy}});
    j["validation"] = e;
    j["best_epoch"] = w.best_epoch;
  }
  return j.dump(2);
}

std::string training_curve_svg(const WatchResult& w, const std::string& title) {
  const double W = 640, H = 360, L = 60, R = 60, T = 40, Bm = 50;
  const std::size_t n = w.epochs.size();
  double max_loss = 1e-9;
  for (const auto& e : w.epochs) max_loss = std::max(max_loss, e.validation_loss);
  const auto x_at = [&](std::size_t i) {
    return L + (n > 1 ? (W - L - R) * static_cast<double>(i) / static_cast<double>(n - 1) : 0);
  };
  const auto y_at = [&](double v, double top) { return H - Bm - (H - T - Bm) * v / top; };
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    << "<text x=\"" << W / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">" << title
    << "</text>\n"
    << "<line x1=\"" << L << "\" y1=\"" << H - Bm << "\" x2=\"" << W - R << "\" y2=\"" << H - Bm
    << "\" stroke=\"black\"/>\n"
    << "<line x1=\"" << L << "\" y1=\"" << T << "\" x2=\"" << L << "\" y2=\"" << H - Bm
    << "\" stroke=\"#1f77b4\"/>\n"
    << "<line x1=\"" << W - R << "\" y1=\"" << T << "\" x2=\"" << W - R << "\" y2=\"" << H - Bm
    << "\" stroke=\"#d62728\"/>\n"
    << "<text x=\"" << W / 2 << "\" y=\"" << H - 15 << "\" text-anchor=\"middle\">epoch</text>\n"
    << "<text x=\"15\" y=\"" << T - 10 << "\" fill=\"#1f77b4\">validation loss (0.." << max_loss
    << ")</text>\n"
    << "<text x=\"" << W - 15 << "\" y=\"" << T - 10
    << "\" text-anchor=\"end\" fill=\"#d62728\">validation accuracy (0..1)</text>\n";
  for (std::size_t i = 0; i < n; ++i)
    s << "<text x=\"" << x_at(i) << "\" y=\"" << H - Bm + 16 << "\" text-anchor=\"middle\">"
      << w.epochs[i].epoch + 1 << "</text>\n";
  for (int series = 0; series < 2; ++series) {
    s << "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"" << (series ? "#d62728" : "#1f77b4")
      << "\" points=\"";
    for (std::size_t i = 0; i < n; ++i) {
      const double v = series ? w.epochs[i].validation_accuracy : w.epochs[i].validation_loss;
      s << x_at(i) << "," << y_at(v, series ? 1.0 : max_loss) << " ";
    }
    s << "\"/>\n";
    for (std::size_t i = 0; i < n; ++i) {
      const double v = series ? w.epochs[i].validation_accuracy : w.epochs[i].validation_loss;
      s << "<circle r=\"3\" cx=\"" << x_at(i) << "\" cy=\"" << y_at(v, series ? 1.0 : max_loss)
        << "\" fill=\"" << (series ? "#d62728" : "#1f77b4") << "\"/>\n";
    }
  }
  s << "</svg>\n";
  return s.str();
}

}  // namespace hetal::protocol
