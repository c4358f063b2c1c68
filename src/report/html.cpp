#include "hesse/report/html.hpp"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace hesse::report {

namespace {

nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

std::string escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// JSON inside <script>: "</" must not close the element.
std::string script_safe(const std::string& json) {
  std::string out;
  for (std::size_t i = 0; i < json.size(); ++i) {
    if (json[i] == '<' && i + 1 < json.size() && json[i + 1] == '/') {
      out += "<\\/";
      ++i;
    } else {
      out += json[i];
    }
  }
  return out;
}

std::string fixed(double v, int digits) {
  if (!std::isfinite(v)) return "-";
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(digits);
  out << v;
  return out.str();
}

nlohmann::json run_json(const Run& run) {
  nlohmann::json history = nlohmann::json::array();
  for (const auto& e : run.result.history)
    history.push_back({{"step", e.step},
                       {"epoch", e.epoch},
                       {"seconds", e.seconds},
                       {"train_loss", number_or_null(e.train_loss)},
                       {"test_loss", number_or_null(e.test_loss)},
                       {"test_accuracy", number_or_null(e.test_accuracy)}});
  return {{"optimizer", run.optimizer}, {"history", history}};
}

}  // namespace

std::optional<std::string> find_chartjs() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("HESSE_CHARTJS")) candidates.emplace_back(env);
  candidates.emplace_back("/usr/share/javascript/chart.js/chart.min.js");
  candidates.emplace_back("/usr/share/javascript/chart.js/chart.umd.js");
  candidates.emplace_back("/usr/share/javascript/chart.js/chart.js");
  for (const auto& path : candidates) {
    std::ifstream in(path, std::ios::binary);
    if (!in) continue;
    std::ostringstream text;
    text << in.rdbuf();
    if (!text.str().empty()) return text.str();
  }
  return std::nullopt;
}

std::string metrics_jsonl(const std::vector<Run>& runs) {
  std::string out;
  for (const auto& run : runs) {
    for (const auto& e : run.result.history)
      out += nlohmann::json{{"type", "eval"},
                            {"run", run.optimizer},
                            {"step", e.step},
                            {"epoch", e.epoch},
                            {"seconds", e.seconds},
                            {"train_loss", number_or_null(e.train_loss)},
                            {"test_loss", number_or_null(e.test_loss)},
                            {"test_accuracy", number_or_null(e.test_accuracy)},
                            {"learning_rate", e.learning_rate}}
                 .dump() +
             "\n";
    const auto& r = run.result;
    out += nlohmann::json{{"type", "result"},
                          {"run", run.optimizer},
                          {"settings", run.settings},
                          {"stop_reason", train::to_string(r.reason)},
                          {"reached_target", r.reached_target},
                          {"seconds_to_target", r.reached_target ? nlohmann::json(r.seconds_to_target)
                                                                 : nlohmann::json(nullptr)},
                          {"steps", r.steps},
                          {"epochs", r.epochs},
                          {"seconds", r.seconds},
                          {"mean_step_seconds", r.mean_step_seconds},
                          {"final_test_accuracy", number_or_null(r.final_test_accuracy)},
                          {"final_test_loss", number_or_null(r.final_test_loss)},
                          {"final_train_loss", number_or_null(r.final_train_loss)},
                          {"numerical_failures", r.numerical_failures}}
               .dump() +
           "\n";
  }
  return out;
}

std::string html_report(const ComparisonInfo& info, const std::vector<Run>& runs,
                        const std::optional<std::string>& chartjs) {
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>"
    << escape(info.title) << "</title>\n<style>\n"
    << "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}\n"
    << "table{border-collapse:collapse;margin:1em 0}td,th{padding:4px 10px;border-bottom:1px "
       "solid #ddd;text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-"
       "align:left}\n.grid{display:grid;grid-template-columns:1fr 1fr;gap:24px}\n"
    << ".note{background:#fff6d6;padding:8px 12px;border-radius:4px}\n</style>\n</head>\n<body>\n";
  h << "<h1>" << escape(info.title) << "</h1>\n<p>Data <b>" << escape(info.data) << "</b> ("
    << info.train_samples << " training, " << info.test_samples << " test samples), model <b>"
    << escape(info.model) << "</b> (" << info.parameters << " parameters, " << escape(info.precision)
    << "), seed " << info.seed << ", " << info.threads << " threads";
  if (info.target_accuracy) h << ", target test accuracy " << fixed(100 * *info.target_accuracy, 1) << "%";
  h << ". Times are training time; evaluations are excluded.</p>\n";

  h << "<table>\n<tr><th>optimizer</th><th>settings</th><th>reached target</th><th>seconds to "
       "target</th><th>epochs</th><th>steps</th><th>final test accuracy</th><th>final test "
       "loss</th><th>final train loss</th><th>mean step ms</th><th>stopped</th></tr>\n";
  for (const auto& run : runs) {
    const auto& r = run.result;
    h << "<tr><td>" << escape(run.optimizer) << "</td><td>" << escape(run.settings) << "</td><td>"
      << (r.reached_target ? "yes" : "no") << "</td><td>"
      << (r.reached_target ? fixed(r.seconds_to_target, 2) : "-") << "</td><td>"
      << fixed(r.epochs, 2) << "</td><td>" << r.steps << "</td><td>"
      << fixed(100 * r.final_test_accuracy, 2) << "%</td><td>" << fixed(r.final_test_loss, 4)
      << "</td><td>" << fixed(r.final_train_loss, 4) << "</td><td>"
      << fixed(1000 * r.mean_step_seconds, 3) << "</td><td>" << escape(train::to_string(r.reason))
      << "</td></tr>\n";
  }
  h << "</table>\n";

  if (!chartjs) {
    h << "<p class=\"note\">Charts need Chart.js: install Debian's libjs-chart.js (or set "
         "HESSE_CHARTJS to a chart.min.js) and run again.</p>\n</body>\n</html>\n";
    return h.str();
  }
  nlohmann::json data = nlohmann::json::array();
  for (const auto& run : runs) data.push_back(run_json(run));
  h << "<div class=\"grid\">\n";
  for (const char* id : {"acc_time", "acc_epoch", "test_loss_time", "train_loss_epoch"})
    h << "<div><canvas id=\"" << id << "\"></canvas></div>\n";
  h << "</div>\n<script>\n" << *chartjs << "\n</script>\n<script>\nconst runs = "
    << script_safe(data.dump()) << ";\n";
  if (info.target_accuracy) h << "const target = " << *info.target_accuracy << ";\n";
  else h << "const target = null;\n";
  h << R"JS(const colors = ['#1f77b4','#d62728','#2ca02c','#ff7f0e','#9467bd','#8c564b','#e377c2','#7f7f7f','#bcbd22','#17becf'];
function chart(id, title, xKey, yKey, xLabel, yLabel, logY) {
  const datasets = runs.map((r, i) => ({
    label: r.optimizer, borderColor: colors[i % colors.length], backgroundColor: colors[i % colors.length],
    showLine: true, pointRadius: 1.5, borderWidth: 1.5,
    data: r.history.filter(e => e[yKey] !== null).map(e => ({x: e[xKey], y: e[yKey]}))}));
  if (target !== null && yKey === 'test_accuracy') {
    let xmax = 0;
    runs.forEach(r => r.history.forEach(e => { xmax = Math.max(xmax, e[xKey]); }));
    datasets.push({label: 'target', data: [{x: 0, y: target}, {x: xmax, y: target}], showLine: true,
                   borderDash: [6, 4], borderColor: '#999', pointRadius: 0, borderWidth: 1});
  }
  new Chart(document.getElementById(id), {type: 'scatter', data: {datasets},
    options: {animation: false, plugins: {title: {display: true, text: title}},
      scales: {x: {title: {display: true, text: xLabel}},
               y: {type: logY ? 'logarithmic' : 'linear', title: {display: true, text: yLabel}}}}});
}
chart('acc_time', 'Test accuracy against training time', 'seconds', 'test_accuracy', 'seconds', 'test accuracy', false);
chart('acc_epoch', 'Test accuracy against epochs', 'epoch', 'test_accuracy', 'epoch', 'test accuracy', false);
chart('test_loss_time', 'Test loss against training time', 'seconds', 'test_loss', 'seconds', 'test loss', true);
chart('train_loss_epoch', 'Training loss against epochs', 'epoch', 'train_loss', 'epoch', 'training loss (mean over batches)', true);
</script>
</body>
</html>
)JS";
  return h.str();
}

}  // namespace hesse::report
