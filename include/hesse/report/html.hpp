// The HTML report of a comparison: one self-contained file (Chart.js from
// Debian's libjs-chart.js inlined, the runs' data embedded as JSON) with the
// summary table and curves of test accuracy and losses against training time
// and epochs.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "hesse/train/fit.hpp"

namespace hesse::report {

/// One optimizer's run in a comparison.
struct Run {
  std::string optimizer;
  std::string settings;  ///< e.g. "lr=0.001 batch=128", shown in the table
  train::FitResult result;
};

/// What was compared, for the report's header.
struct ComparisonInfo {
  std::string title = "hesse compare";
  std::string data;
  std::string model;
  std::optional<double> target_accuracy;
  Index train_samples = 0;
  Index test_samples = 0;
  Index parameters = 0;
  int threads = 0;
  std::uint64_t seed = 0;
  std::string precision;
};

/// The Chart.js source to inline: $HESSE_CHARTJS if set, else Debian's
/// libjs-chart.js (/usr/share/javascript/chart.js/chart.min.js); nullopt
/// when neither is readable.
std::optional<std::string> find_chartjs();

/// The report as one HTML document. Without `chartjs` the tables are kept
/// and the charts are replaced by a note saying how to get them.
std::string html_report(const ComparisonInfo& info, const std::vector<Run>& runs,
                        const std::optional<std::string>& chartjs);

/// The runs as JSON lines, one object per evaluation ({"type": "eval",
/// "run": ...}) and one per run ({"type": "result", ...}).
std::string metrics_jsonl(const std::vector<Run>& runs);

}  // namespace hesse::report
