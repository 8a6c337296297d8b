#include "hetal/protocol/bundle.h"

#include <google/protobuf/util/json_util.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "hetal/cryptotl/encrypted_network.h"

namespace hetal::protocol {
namespace detail {

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

[[noreturn]] void fail(const std::string& msg) { throw ProtocolError(msg); }

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

std::string key_path(const fs::path& bundle, std::size_t i) {
  return (bundle / "keys" / kKeyFiles[i]).string();
}

std::vector<ckks::Ciphertext> load_cts(const ckks::Context& ctx, const fs::path& path,
                                       std::size_t count, core::Sha256* hash) {
  std::vector<ckks::Ciphertext> out;
  try {
    ckks::detail::read_file(
        path.string(),
        [&](std::istream& in) {
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
        },
        hash);
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
bool wait_for(const fs::path& path, const WaitOptions& w, const std::vector<fs::path>& errors,
              bool timeout_fails) {
  const auto t0 = Clock::now();
  for (;;) {
    if (fs::exists(path)) return true;
    for (const auto& e : errors) {
      if (fs::exists(e)) {
        std::ifstream in(e);
        std::string text((std::istreambuf_iterator<char>(in)), {});
        fail("the other side failed (" + e.string() + "): " + text);
      }
    }
    if (w.cancelled && w.cancelled()) fail("cancelled while waiting for " + path.string());
    if (w.peer_alive && !w.peer_alive() && !fs::exists(path))
      fail("the other side exited before writing " + path.string());
    if (since(t0) > w.timeout_s && !timeout_fails) return false;
    if (since(t0) > w.timeout_s)
      fail("timed out after " + std::to_string(static_cast<long>(w.timeout_s)) + " s waiting for " +
           path.string());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

json config_json(const TrainConfig& c) {
  return {{"preset", c.preset},
          {"batch", c.batch},
          {"learning_rate", c.learning_rate},
          {"optimizer", optimizer_name(c.optimizer)},
          {"max_epochs", c.max_epochs},
          {"patience", c.patience},
          {"validation_fraction", c.validation_fraction},
          {"seed", c.seed},
          {"weight_bound", c.weight_bound},
          {"lower_network_dim", c.lower_network_dim}};
}

namespace {
void check_config(const TrainConfig& c, const std::string& from) {
  if (c.batch == 0 || c.max_epochs == 0 || !(c.learning_rate > 0) || !(c.weight_bound > 0) ||
      !(c.validation_fraction > 0 && c.validation_fraction < 1))
    fail(from + ": hyper-parameters out of range");
}
}  // namespace

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
  if (j.contains("lower_network_dim"))  // absent in files from before CryptoTL
    c.lower_network_dim = field<std::size_t>(j, "lower_network_dim", from);
  check_config(c, from.string());
  return c;
}

void write_message(const fs::path& path, const google::protobuf::Message& m) {
  std::string text;
  google::protobuf::util::JsonPrintOptions o;
  o.add_whitespace = true;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = true;
  if (!google::protobuf::util::MessageToJsonString(m, &text, o).ok())
    fail(path.string() + ": cannot write the message");
  write_text(path, text);
}

void read_message(const fs::path& path, google::protobuf::Message& m) {
  std::ifstream in(path);
  if (!in) fail(path.string() + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  const auto st = google::protobuf::util::JsonStringToMessage(ss.str(), &m);
  if (!st.ok()) fail(path.string() + ": malformed JSON: " + std::string(st.message()));
}

v1::JobSpec spec_of(const Meta& m) {
  v1::JobSpec s;
  s.set_format(kFormat);
  s.set_version(m.cfg.lower_network_dim ? kVersionLowerNetwork : kVersion);
  auto* c = s.mutable_config();
  c->set_preset(m.cfg.preset);
  c->set_batch(m.cfg.batch);
  c->set_learning_rate(m.cfg.learning_rate);
  c->set_optimizer(optimizer_name(m.cfg.optimizer));
  c->set_max_epochs(m.cfg.max_epochs);
  c->set_patience(m.cfg.patience);
  c->set_validation_fraction(m.cfg.validation_fraction);
  c->set_seed(m.cfg.seed);
  c->set_weight_bound(m.cfg.weight_bound);
  if (m.cfg.lower_network_dim) c->set_lower_network_dim(m.cfg.lower_network_dim);
  auto* sh = s.mutable_shape();
  sh->set_features(m.shape.features);
  sh->set_classes(m.shape.classes);
  sh->set_batch(m.shape.batch);
  sh->set_slots(m.shape.slots);
  for (auto r : m.train_rows) s.add_train_rows(r);
  for (auto r : m.val_rows) s.add_validation_rows(r);
  s.set_key_id(m.key_id);
  s.set_description(m.description);
  return s;
}

Meta meta_from_spec(const v1::JobSpec& s, const std::string& from) {
  Meta m;
  const auto& c = s.config();
  m.cfg.preset = c.preset();
  m.cfg.batch = c.batch();
  m.cfg.learning_rate = c.learning_rate();
  m.cfg.optimizer = optimizer_from(c.optimizer());
  m.cfg.max_epochs = c.max_epochs();
  m.cfg.patience = c.patience();
  m.cfg.validation_fraction = c.validation_fraction();
  m.cfg.seed = c.seed();
  m.cfg.weight_bound = c.weight_bound();
  m.cfg.lower_network_dim = c.lower_network_dim();
  check_config(m.cfg, from);
  m.shape = {s.shape().features(), s.shape().classes(), s.shape().batch(), s.shape().slots()};
  try {
    m.shape.validate();
  } catch (const std::invalid_argument& e) {
    fail(from + ": " + e.what());
  }
  if (const std::size_t d = m.cfg.lower_network_dim) {
    if (d < nn::kConvKernel || d > nn::kMaxDim)
      fail(from + ": lower network dimension " + std::to_string(d) + " out of range (" +
           std::to_string(nn::kConvKernel) + ".." + std::to_string(nn::kMaxDim) + ")");
    if (m.shape.features + 2 != d)
      fail(from + ": a head on a lower network of dimension " + std::to_string(d) + " has " +
           std::to_string(d - 2) + " features, not " + std::to_string(m.shape.features));
    try {
      head_shape(m.cfg, d, m.shape.classes, m.shape.slots);
    } catch (const ProtocolError& e) {
      fail(from + ": " + e.what());
    }
  }
  if (m.shape.batch != m.cfg.batch) fail(from + ": the shape's batch differs from the config's");
  m.train_rows.assign(s.train_rows().begin(), s.train_rows().end());
  m.val_rows.assign(s.validation_rows().begin(), s.validation_rows().end());
  m.key_id = s.key_id();
  m.description = s.description().substr(0, 4096);
  if (m.train_rows.empty() || m.val_rows.empty()) fail(from + ": no batches");
  for (const auto* v : {&m.train_rows, &m.val_rows})
    for (std::size_t r : *v)
      if (r == 0 || r > m.shape.batch) fail(from + ": a batch size is out of range");
  return m;
}

Meta read_meta(const fs::path& bundle) {
  const fs::path p = bundle / "meta.json";
  if (!fs::exists(p)) fail(p.string() + ": missing (run `hetal client encrypt` first)");
  v1::JobSpec s;
  read_message(p, s);
  if (s.format() != kFormat || (s.version() != static_cast<std::uint32_t>(kVersion) &&
                                s.version() != static_cast<std::uint32_t>(kVersionLowerNetwork)))
    fail(p.string() + ": not a version-1 or version-2 hetal bundle");
  if ((s.version() == static_cast<std::uint32_t>(kVersionLowerNetwork)) !=
      (s.config().lower_network_dim() != 0))
    fail(p.string() + ": version 2 marks a job on the server's lower network, and only such a job");
  return meta_from_spec(s, p.string());
}

fs::path epoch_file(const fs::path& bundle, const char* kind, std::size_t e, const char* ext) {
  return bundle / "epochs" / (std::string(kind) + "-" + std::to_string(e) + ext);
}

}  // namespace detail

using namespace detail;

train::Shape head_shape(const TrainConfig& cfg, std::size_t features, std::size_t classes,
                        std::size_t slots) {
  const std::size_t d = cfg.lower_network_dim;
  if (!d) {
    const train::Shape s{features, classes, cfg.batch, slots};
    try {
      s.validate();
    } catch (const std::invalid_argument& e) {
      fail(e.what());
    }
    return s;
  }
  if (features != d)
    fail("the server's lower network takes " + std::to_string(d) + " features, the data has " +
         std::to_string(features));
  try {
    const cryptotl::Packing pk(d, slots);
    const train::Shape s{d - 2, classes, cfg.batch, slots};
    s.validate();
    // The network's outputs are the head's features as they lie: HETAL's blocks of s1 = one
    // sample's slots, so a batch is one ciphertext of inputs and of features.
    if (s.block().s1 != pk.block) {
      // s0 = min(max(bit_ceil(batch), c_pad), slots / c_pad) must be slots / B.
      const std::size_t per = pk.per_ciphertext, cp = s.c_pad();
      const std::string what = "with the server's lower network of dimension " + std::to_string(d) +
                               ", each sample takes " + std::to_string(pk.block) + " slots";
      if (cp > per || cp * per > slots)
        fail(what + ": " + std::to_string(classes) + " classes do not fit a block of " +
             std::to_string(per) + " rows at these parameters");
      fail(what + ", so a batch is " + std::to_string(cp == per ? 1 : per / 2 + 1) + ".." +
           std::to_string(per) + " rows at these parameters, not " + std::to_string(cfg.batch));
    }
    return s;
  } catch (const std::invalid_argument& e) {
    fail(e.what());
  }
}

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
  tp.weight_bound = cfg.weight_bound;
  return tp;
}

}  // namespace hetal::protocol
