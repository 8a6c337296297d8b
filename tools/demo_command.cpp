// `hetal reference` (the plain reference trainer) and `hetal demo` (both roles end to end).
#include <omp.h>
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>

#include "hetal/nn/lower_network.h"
#include "hetal/protocol/grpc/store.h"
#include "train_impl.h"

namespace hetal::cli {

bool run_reference(TrainingCommands::Impl& m, int& code) {
  code = 0;
  if (*m.reference) {
    m.apply_hyper(m.reference);
    auto all = m.raw("train", m.limit);
    const bool lower = !m.lower_network.empty();
    const auto scaler = train::FeatureScaler::fit(all.x, m.normalization(lower));
    scaler.apply(all.x);
    auto test = m.test_data(all.classes, scaler);
    if (lower) {
      // The plain twin of a head trained on the server's lower network (--server-network): the
      // network's outputs in double precision are the features.
      const nn::FusedNetwork f = nn::fuse(nn::load_lower_network(m.lower_network));
      for (train::Dataset* d : {&all, &test}) {
        if (!d->x.rows) continue;
        if (d->x.cols != f.dim)
          throw CLI::ValidationError("--lower-network",
                                     m.lower_network + " takes " + std::to_string(f.dim) +
                                         " features, the data has " + std::to_string(d->x.cols));
        const auto y = nn::forward(f, d->x.data, d->x.rows);
        d->x = matrix::Matrix(d->x.rows, f.out_dim);
        std::copy(y.begin(), y.end(), d->x.data.begin());
      }
    }
    if (test.x.rows && test.x.cols != all.x.cols)
      throw CLI::ValidationError("--test-features",
                                 "test features have " + std::to_string(test.x.cols) +
                                     " columns, training features " + std::to_string(all.x.cols));
    const auto [tr, va] = train::split(all, m.cfg.validation_fraction, m.cfg.seed);
    train::TrainParams tp = protocol::plain_params(m.cfg);
    std::printf(
        "plain reference: %zu training / %zu validation / %zu test rows, batch %zu, lr "
        "%g, %s, up to %zu epochs (patience %zu), normalisation %s\n",
        tr.x.rows, va.x.rows, test.x.rows, tp.batch, tp.learning_rate, m.optimizer.c_str(),
        tp.max_epochs, tp.patience, train::normalization_name(scaler.kind).c_str());
    if (!test.x.rows)
      std::printf(
          "no held-out test set (give --test-features / --test-labels): only "
          "validation figures are reported\n");
    double acc[2] = {};
    for (int k = 0; k < 2; ++k) {
      tp.softmax = k ? train::SoftmaxKind::simulation : train::SoftmaxKind::exact;
      tp.weight_bound = k ? m.cfg.weight_bound : 0;  // only the simulation bootstraps
      const auto t0 = Clock::now();
      train::TrainResult r;
      try {
        r = train::train(tr, va, tp);
      } catch (const std::range_error& e) {
        // The exact run above stands; the simulation (the encrypted run's twin) diverged:
        // a logit beyond the softmax's range or a weight beyond the bound.
        std::fprintf(stderr, "hetal: error: simulation: %s\n", e.what());
        code = 1;
        return true;
      }
      const auto& best = r.epochs[r.best_epoch];
      std::printf("%-10s: %zu epochs (best %zu), %zu steps, validation loss %.4f, accuracy %.2f %%",
                  k ? "simulation" : "exact", r.epochs.size(), r.best_epoch + 1, r.steps,
                  best.validation_loss, 100 * best.validation_accuracy);
      if (test.x.rows) {
        acc[k] = train::accuracy(r.weights, test);
        std::printf(", test accuracy %.2f %%", 100 * acc[k]);
      }
      std::printf(", max |W| %.2f at step %zu (%.1f s)\n", r.max_abs_weight, r.max_abs_weight_step,
                  since(t0));
    }
    if (test.x.rows)
      std::printf("simulation - exact: %+.2f points (test)\n", 100 * (acc[1] - acc[0]));
    return true;
  }
  return false;
}

bool run_demo(TrainingCommands::Impl& m, int& code) {
  const bool ins = m.insecure;
  code = 0;
  if (*m.demo) {
    m.apply_hyper(m.demo);
    // Defaults sized for the main job: about 11 minutes at N = 2^16 on 2 cores (6 steps).
    // Chosen on validation data (docs/benchmarks.md, "The main job"): of the 6-step schedules,
    // 2560 rows x 2 epochs at lr 0.3 was within 0.1 point of the best accuracy on 10000
    // held-out training images and had the lowest validation loss among those.
    if (m.dataset.empty() && m.features_file.empty()) m.dataset = "mnist";
    if (!m.demo->count("--limit")) m.limit = 2926;  // 2560 training rows after the split
    if (!m.demo->count("--test-limit")) m.test_limit = 2048;
    if (!m.demo->count("--epochs")) m.cfg.max_epochs = 2;
    // Standardised pre-trained features take a smaller step than HETAL's lr 2.0 for unit-norm
    // ViT features.
    if (!m.demo->count("--lr") && !m.demo->count("--hyper") &&
        m.normalization() == train::Normalization::standard)
      m.cfg.learning_rate = 0.3;
    const auto t0 = Clock::now();
    const fs::path work(m.work);
    fs::remove_all(work);
    fs::create_directories(work);
    const bool net = m.transport == "grpc";
    const std::string client = (work / "client").string(),
                      bundle =
                          net ? (work / "client" / "outbox").string() : (work / "bundle").string();
    auto all = m.raw("train", m.limit);
    const auto scaler = train::FeatureScaler::fit(all.x, m.normalization());
    scaler.apply(all.x);
    const auto test = m.test_data(all.classes, scaler);
    if (!test.x.rows)
      throw CLI::ValidationError("demo",
                                 "needs a held-out test set: --dataset, or "
                                 "--test-features / --test-labels");
    const std::string what =
        !m.dataset.empty()
            ? m.dataset + (m.pixels ? " (pixels)" : " (MobileNetV2 " + m.choice.layer + ")")
            : m.features_file;
    std::printf(
        "== hetal demo: %s, %zu training rows (87.5 %% train / 12.5 %% validation), %zu "
        "test rows; %s, batch %zu, lr %g, %s, up to %zu epochs (patience %zu); %d "
        "threads ==\n",
        what.c_str(), all.x.rows, test.x.rows, m.cfg.preset.c_str(), m.cfg.batch,
        m.cfg.learning_rate, m.optimizer.c_str(), m.cfg.max_epochs, m.cfg.patience,
        omp_get_max_threads());
    std::fflush(stdout);
    const double tk = protocol::client_keygen(client, bundle, m.cfg, all.x.cols, all.classes, ins);
    std::printf("[client] keys generated and written in %.1f s\n", tk);
    std::fflush(stdout);
    const auto up =
        protocol::client_encrypt(client, bundle, all, what, ins, progress_bar("[client]"));
    std::printf(
        "[client] encrypted %zu training rows (%zu batches), %zu validation rows: %.1f "
        "MB in %.1f s\n",
        up.train_rows, up.train_batches, up.validation_rows, static_cast<double>(up.bytes) / 1e6,
        up.seconds);
    std::fflush(stdout);
    // The server role: a gRPC service (one process for training and inference), or a process
    // per task on the shared directory.
    std::unique_ptr<Child> service, task;
    std::unique_ptr<protocol::ServerLink> link;
    fs::path server_side = bundle;  // where the server keeps the job (its report.json)
    if (net) {
      protocol::grpc_transport::Endpoint ep;
      std::tie(service, ep) = start_service(work, ins);
      const auto tu = Clock::now();
      const auto sub =
          protocol::grpc_transport::submit_bundle(ep, bundle, progress_bar("[client] upload"));
      std::printf(
          "[client] uploaded to the gRPC service at %s (mutual TLS): %.1f MB in %.1f s, job %s\n",
          ep.server.c_str(), static_cast<double>(sub.bytes_sent) / 1e6, since(tu),
          sub.job_id.c_str());
      std::fflush(stdout);
      link = protocol::grpc_transport::grpc_link(ep, bundle, sub.job_id);
      server_side = work / "server" / "tenants" /
                    protocol::grpc_transport::Store::tenant_of("hetal-demo") / "jobs" / sub.job_id;
    } else {
      link = protocol::directory_link(bundle);
      task = server_process("train", bundle, ins);
    }
    const auto finish_task = [&] {  // the directory transport's server process, when it ends
      const int rc = task ? task->wait() : 0;
      task.reset();
      return rc;
    };
    const auto tw = Clock::now();
    const auto watch =
        protocol::client_watch(client, *link, ins, waiting_on(net ? *service : *task, m.timeout));
    if (const int rc = finish_task(); rc != 0) {
      code = rc;
      return true;
    }
    const double train_s = since(tw);
    for (const auto& e : watch.epochs)
      std::printf("[client] epoch %zu: validation loss %.4f, accuracy %.4f%s\n", e.epoch + 1,
                  e.validation_loss, e.validation_accuracy, e.stop ? " (stop)" : "");
    const matrix::Matrix w_enc = protocol::client_decrypt_model(client, *link, ins);
    // Encrypted inference on the test set (files: a second server process).
    if (!net) task = server_process("infer", bundle, ins);
    const auto ti = Clock::now();
    const matrix::Matrix logits = protocol::client_predict_encrypted(
        client, *link, test.x, ins, waiting_on(net ? *service : *task, m.timeout));
    if (const int rc = finish_task(); rc != 0) {
      code = rc;
      return true;
    }
    const double infer_s = since(ti);
    if (service) {
      kill(service->pid, SIGTERM);
      service->wait();
    }
    // The plain reference on the same split, batches and schedule.
    const auto [tr, va] = train::split(all, m.cfg.validation_fraction, m.cfg.seed);
    train::TrainParams tp = protocol::plain_params(m.cfg);
    tp.max_epochs = watch.best_epoch + 1;  // the epoch whose model the client decrypted
    tp.patience = 0;
    tp.softmax = train::SoftmaxKind::simulation;
    const auto sim_best = train::train(tr, va, tp);
    tp.softmax = train::SoftmaxKind::exact;
    tp.weight_bound = 0;
    const auto exact_best = train::train(tr, va, tp);
    const double acc_enc = train::accuracy(w_enc, test);
    const double acc_inf = train::logits_loss_accuracy(logits, test.y).second;
    const double acc_exact = train::accuracy(exact_best.last_weights, test);
    const double acc_sim = train::accuracy(sim_best.last_weights, test);
    const double diff = matrix::max_abs_diff(w_enc, sim_best.last_weights);
    // Reports.
    std::ifstream rin(server_side / "server" / "report.json");
    std::string server_report((std::istreambuf_iterator<char>(rin)), {});
    write_file((work / "training-curve.svg").string(),
               protocol::training_curve_svg(watch, "hetal demo: " + what));
    char extra[768];
    std::snprintf(extra, sizeof extra,
                  "{\"dataset\": \"%s\", \"train_rows\": %zu, \"validation_rows\": %zu, "
                  "\"test_rows\": %zu, \"test_accuracy\": {\"encrypted_training\": %.6f, "
                  "\"encrypted_inference\": %.6f, \"plain_exact\": %.6f, \"plain_simulation\": "
                  "%.6f}, \"max_abs_weight_diff_vs_simulation\": %.3e, \"keygen_seconds\": %.2f, "
                  "\"encrypt_seconds\": %.2f, \"training_seconds\": %.2f, "
                  "\"inference_seconds\": %.2f, \"total_seconds\": %.2f,\n \"server\": ",
                  what.c_str(), up.train_rows, up.validation_rows, test.x.rows, acc_enc, acc_inf,
                  acc_exact, acc_sim, diff, tk, up.seconds, train_s, infer_s, since(t0));
    write_file((work / "report.json").string(),
               std::string(extra) + (server_report.empty() ? "null" : server_report) + "}\n");
    std::printf("\n== result (%s test set, %zu rows) ==\n", what.c_str(), test.x.rows);
    std::printf("encrypted training, decrypted model:   %.2f %%\n", 100 * acc_enc);
    std::printf("encrypted inference (encrypted model): %.2f %%\n", 100 * acc_inf);
    std::printf("plain reference, exact softmax:        %.2f %%\n", 100 * acc_exact);
    std::printf("plain reference, simulation:           %.2f %%\n", 100 * acc_sim);
    std::printf("max |W_encrypted - W_simulation|:      %.2e (max |W| %.2f)\n", diff,
                matrix::max_abs(w_enc));
    std::printf(
        "time: keygen %.0f s, encrypt %.0f s, training %.0f s, inference %.0f s, total "
        "%.0f s\n",
        tk, up.seconds, train_s, infer_s, since(t0));
    std::printf("report: %s, curve: %s\n", (work / "report.json").c_str(),
                (work / "training-curve.svg").c_str());
    return true;
  }
  return false;
}

}  // namespace hetal::cli
