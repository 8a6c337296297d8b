// Rendering of a run: report.json and the training curve as SVG.
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "hetal/protocol/protocol.h"

namespace hetal::protocol {

using json = nlohmann::json;

std::string report_json(const ServerReport& r, const WatchResult& w) {
  const auto& t = r.times;
  const double steps = t.steps ? static_cast<double>(t.steps) : 1.0;
  json j = {{"setup_seconds", r.setup_seconds},
            {"epochs", r.epochs},
            {"resumed_from_epoch", r.resumed_from},
            {"stopped_early", r.stopped_early},
            {"decision_timed_out", r.decision_timed_out},
            {"epoch_seconds", r.epoch_seconds},
            {"validation_seconds", r.validation_seconds},
            {"data_seconds", r.data_seconds},
            {"network_seconds", r.network_seconds},
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
