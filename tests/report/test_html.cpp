#include <gtest/gtest.h>

#include <sstream>

#include <nlohmann/json.hpp>

#include "hesse/report/html.hpp"

namespace hesse::report {
namespace {

std::vector<Run> two_runs() {
  train::FitResult a;
  a.reached_target = true;
  a.seconds_to_target = 1.5;
  a.steps = 20;
  a.epochs = 2;
  a.final_test_accuracy = 0.9;
  a.history = {{10, 1, 0.7, 0.5, 0.45, 0.85, 0.001}, {20, 2, 1.5, 0.3, 0.35, 0.9, 0.001}};
  train::FitResult b;
  b.reason = train::StopReason::TimeLimit;
  b.history = {{5, 0.5, 2.0, std::nan(""), 1.2, 0.5, 0.1}};
  return {{"adam", "batch=128", a}, {"<k>fac", "batch=128 lr=0.01", b}};
}

TEST(HtmlReport, InlinesChartJsEmbedsTheRunsAndEscapesText) {
  const ComparisonInfo info{.data = "digits", .model = "mlp:64-10", .target_accuracy = 0.87};
  const std::string html = html_report(info, two_runs(), std::string("/*CHARTJS*/ </script>"));
  EXPECT_NE(html.find("/*CHARTJS*/"), std::string::npos);
  EXPECT_NE(html.find("&lt;k&gt;fac"), std::string::npos) << "names are escaped in the table";
  EXPECT_EQ(html.find("<td><k>fac"), std::string::npos);
  EXPECT_NE(html.find("\"optimizer\":\"<k>fac\""), std::string::npos) << "raw in the chart data";
  EXPECT_NE(html.find("const target = 0.87"), std::string::npos);
  EXPECT_NE(html.find("\"test_accuracy\":0.85"), std::string::npos);
  EXPECT_NE(html.find("\"train_loss\":null"), std::string::npos) << "NaN becomes null";
  EXPECT_NE(html.find("<td>yes</td><td>1.50</td>"), std::string::npos);
  EXPECT_NE(html.find("time limit"), std::string::npos);
  for (const char* id : {"acc_time", "acc_epoch", "test_loss_time", "train_loss_epoch"})
    EXPECT_NE(html.find(std::string("id=\"") + id + "\""), std::string::npos) << id;
}

TEST(HtmlReport, ChartDataCannotCloseItsScriptElement) {
  auto runs = two_runs();
  runs[0].optimizer = "a</script><b>";
  const std::string html = html_report({}, runs, std::string("/*CHARTJS*/"));
  EXPECT_EQ(html.find("a</script>"), std::string::npos);
  EXPECT_NE(html.find("a<\\/script>"), std::string::npos);
}

TEST(HtmlReport, WithoutChartJsKeepsTheTableAndSaysWhy) {
  const std::string html = html_report({}, two_runs(), std::nullopt);
  EXPECT_NE(html.find("libjs-chart.js"), std::string::npos);
  EXPECT_EQ(html.find("<canvas"), std::string::npos);
  EXPECT_NE(html.find("<td>adam</td>"), std::string::npos);
}

TEST(HtmlReport, FindsDebiansChartJs) {
  const auto chartjs = find_chartjs();
  if (!chartjs) GTEST_SKIP() << "libjs-chart.js is not installed";
  EXPECT_NE(chartjs->find("Chart"), std::string::npos);
}

TEST(MetricsJsonl, OneObjectPerEvaluationAndPerRun) {
  std::istringstream in(metrics_jsonl(two_runs()));
  int evals = 0, results = 0;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j["type"] == "eval") ++evals;
    if (j["type"] == "result") {
      ++results;
      if (j["run"] == "adam") {
        EXPECT_EQ(j["seconds_to_target"], 1.5);
      } else {
        EXPECT_TRUE(j["seconds_to_target"].is_null());
        EXPECT_EQ(j["stop_reason"], "time limit");
      }
    }
  }
  EXPECT_EQ(evals, 3);
  EXPECT_EQ(results, 2);
}

}  // namespace
}  // namespace hesse::report
