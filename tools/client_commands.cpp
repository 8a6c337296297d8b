// `hetal client ...`: the data owner's commands, over either transport.
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>

#include "hetal/protocol/grpc/store.h"
#include "train_impl.h"

namespace hetal::cli {

bool run_client_commands(TrainingCommands::Impl& m, int& code) {
  const bool ins = m.insecure;
  code = 0;
  if (*m.c_keygen) {
    m.apply_hyper(m.c_keygen);
    if (!m.dataset.empty() && !m.pixels) {
      m.features = m.choice.dimension();
      m.classes = 10;
    } else if (!m.dataset.empty()) {
      const auto d = train::load_builtin(m.dataset, "test");
      m.features = d.x.cols;
      m.classes = d.classes;
    } else if (!m.features_file.empty()) {
      const auto d = m.raw("train", 0);
      m.features = d.x.cols;
      if (!m.classes) m.classes = d.classes;
    }
    if (!m.features || !m.classes)
      throw CLI::ValidationError("keygen", "give --dataset, or --feature-count and --classes");
    if (m.server_network) {
      m.cfg.lower_network_dim = m.features;
      if (!m.c_keygen->count("--batch"))
        m.cfg.batch = protocol::lower_network_batch(m.cfg.preset, m.features);
    }
    if (m.remote()) m.bundle_dir = m.local_bundle();
    const double s =
        protocol::client_keygen(m.client_dir, m.bundle_dir, m.cfg, m.features, m.classes, ins);
    std::printf(
        "keys for %zu features, %zu classes, batch %zu (%s) in %.1f s: secret key in %s, "
        "public keys in %s/keys\n",
        m.features, m.classes, m.cfg.batch, m.cfg.preset.c_str(), s, m.client_dir.c_str(),
        m.bundle_dir.c_str());
    return true;
  }
  if (*m.c_encrypt) {
    auto d = m.raw("train", m.limit);
    // The scaler is fitted on the client's training rows and kept with its private files:
    // predict applies the same statistics.
    const bool lower = protocol::client_config(m.client_dir).lower_network_dim != 0;
    const auto scaler = train::FeatureScaler::fit(d.x, m.normalization(lower));
    scaler.apply(d.x);
    fs::create_directories(m.client_dir);
    scaler.save((fs::path(m.client_dir) / "feature_scaler.txt").string());
    const auto s = protocol::client_encrypt(m.client_dir, m.local_bundle(), d,
                                            m.description.empty() ? m.dataset : m.description, ins,
                                            progress_bar("client"));
    std::printf(
        "encrypted %zu training rows (%zu batches) and %zu validation rows: %zu "
        "ciphertexts, %.1f MB, %.1f s\n",
        s.train_rows, s.train_batches, s.validation_rows, s.ciphertexts,
        static_cast<double>(s.bytes) / 1e6, s.seconds);
    if (m.remote()) {
      const auto t0 = Clock::now();
      const auto up = protocol::grpc_transport::submit_bundle(m.endpoint, m.local_bundle(),
                                                              progress_bar("upload"));
      write_file((fs::path(m.client_dir) / "job.txt").string(), up.job_id + "\n");
      std::printf(
          "uploaded to %s in %.1f s: %.1f MB sent, %zu objects (%zu already on the server); "
          "job %s\n",
          m.endpoint.server.c_str(), since(t0), static_cast<double>(up.bytes_sent) / 1e6,
          up.objects, up.already_there, up.job_id.c_str());
    }
    return true;
  }
  if (*m.c_watch) {
    const auto w = protocol::client_watch(m.client_dir, *m.link(), ins, m.waiting("client"));
    for (const auto& e : w.epochs)
      std::printf("epoch %zu: validation loss %.4f, accuracy %.4f%s\n", e.epoch + 1,
                  e.validation_loss, e.validation_accuracy, e.stop ? "  -> stop" : "");
    std::printf("best epoch %zu\n", w.best_epoch + 1);
    if (!m.plot.empty()) write_file(m.plot, protocol::training_curve_svg(w, "hetal training"));
    return true;
  }
  if (*m.c_decrypt) {
    write_model_csv(m.out, protocol::client_decrypt_model(m.client_dir, *m.link(), ins));
    std::printf("model written to %s\n", m.out.c_str());
    return true;
  }
  if (*m.c_predict) {
    auto d = m.raw("test", m.limit);
    const fs::path scaler_file = fs::path(m.client_dir) / "feature_scaler.txt";
    const auto scaler =
        fs::exists(scaler_file)
            ? train::FeatureScaler::load(scaler_file.string())
            : train::FeatureScaler::fit(d.x, m.normalization() == train::Normalization::standard
                                                 ? train::Normalization::none
                                                 : m.normalization());
    scaler.apply(d.x);
    double acc = 0;
    if (m.encrypted) {
      acc = train::logits_loss_accuracy(protocol::client_predict_encrypted(
                                            m.client_dir, *m.link(), d.x, ins, m.waiting("client")),
                                        d.y)
                .second;
    } else {
      if (protocol::client_config(m.client_dir).lower_network_dim)
        throw protocol::ProtocolError(
            "the head was trained on the server's lower network, which only the server can run: "
            "predict with --encrypted");
      acc = train::accuracy(protocol::client_decrypt_model(m.client_dir, *m.link(), ins), d);
    }
    std::printf("%s accuracy on %zu rows: %.4f\n", m.encrypted ? "encrypted-inference" : "plain",
                d.x.rows, acc);
    return true;
  }
  if (*m.c_status || *m.c_cancel) {
    std::printf("job %s: %s\n", m.job_id().c_str(),
                (*m.c_status ? protocol::grpc_transport::job_status
                             : protocol::grpc_transport::cancel_job)(m.endpoint, m.job_id())
                    .c_str());
    return true;
  }
  return false;
}

}  // namespace hetal::cli
