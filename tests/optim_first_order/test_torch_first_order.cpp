// Golden comparison with torch.optim (Debian's python3-torch, PyTorch 1.13):
// the 4-16-3 tanh network from the same float parameters, ten steps on the
// same fixed batches of 16 blob samples, every option combination of
// test_util::configs(). After every step, each parameter must agree with
// PyTorch's to
//   |x_hesse - x_torch| <= 1e-5 max(|x_torch|, 0.1),
// a float32 tolerance (the two libraries sum the batch gradient in
// different orders, so they differ by a few ulp per step). Skipped, with the
// reason, when PyTorch is not installed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "../common/small_network.hpp"
#include "first_order_test_util.hpp"
#include "hesse/data/batch_sampler.hpp"
#include "hesse/optim/stochastic_adapter.hpp"

namespace hesse::optim {
namespace {

const char* kPython = "/usr/bin/python3";  // Debian's python3-* modules import only here
constexpr int kSteps = 10;
constexpr double kTolerance = 1e-5;
constexpr double kScaleFloor = 0.1;

bool torch_available() {
  static const bool available =
      std::filesystem::exists(kPython) &&
      std::system((std::string(kPython) + " -c 'import torch' >/dev/null 2>&1").c_str()) == 0;
  return available;
}

struct GoldenRun {
  data::Dataset<float> data = testing::blobs<float>(96, 5);
  nn::Sequential<float> network = testing::small_mlp<float>();
  Vector<float> x0 = network.initial_parameters(3);
  std::vector<std::vector<Index>> batches;

  GoldenRun() {
    data::BatchSampler sampler(data.num_samples(), 16, 17);
    for (std::uint64_t epoch = 0; Index(batches.size()) < kSteps; ++epoch) {
      sampler.start_epoch(epoch);
      for (Index b = 0; b < sampler.num_batches() && Index(batches.size()) < kSteps; ++b)
        batches.emplace_back(sampler.batch(b).begin(), sampler.batch(b).end());
    }
  }
};

class TorchFirstOrder : public ::testing::TestWithParam<test_util::Config> {
 protected:
  // One PyTorch run for all cases (its start-up dominates).
  static void SetUpTestSuite() {
    if (!torch_available()) return;
    directory_ = std::filesystem::temp_directory_path() /
                 ("hesse_torch_first_order_" + std::to_string(::getpid()));
    std::filesystem::create_directories(directory_);
    const GoldenRun s;
    std::ofstream features(directory_ / "features.txt"), labels(directory_ / "labels.txt"),
        x0(directory_ / "x0.txt"), batches(directory_ / "batches.txt"),
        cases(directory_ / "cases.txt");
    for (auto* out : {&features, &labels, &x0, &batches, &cases}) out->precision(9);
    for (Index i = 0; i < s.data.num_samples(); ++i) {
      for (Index j = 0; j < s.data.num_features(); ++j)
        features << (j ? " " : "") << s.data.features(j, i);
      features << "\n";
      labels << s.data.label(i) << "\n";
    }
    for (Index i = 0; i < s.x0.size(); ++i) x0 << (i ? " " : "") << s.x0[i];
    for (const auto& batch : s.batches) {
      for (std::size_t i = 0; i < batch.size(); ++i) batches << (i ? " " : "") << batch[i];
      batches << "\n";
    }
    for (const auto& c : test_util::configs()) {
      cases << c.label << " " << c.optimizer;
      for (const auto& [key, value] : c.settings) cases << " " << key << "=" << value;
      cases << "\n";
    }
    for (auto* out : {&features, &labels, &x0, &batches, &cases}) out->close();
    command_ = std::string(kPython) + " " + HESSE_TESTS_DIR +
               "/optim_first_order/torch_first_order.py " + directory_.string() + " tanh 4-16-3";
    status_ = std::system(command_.c_str());
  }
  static void TearDownTestSuite() {
    if (!directory_.empty()) std::filesystem::remove_all(directory_);
  }

  static inline std::filesystem::path directory_;
  static inline std::string command_;
  static inline int status_ = -1;
};

TEST_P(TorchFirstOrder, TenStepsAgreeWithTorchOptim) {
  if (!torch_available()) GTEST_SKIP() << "PyTorch (python3-torch) is not installed";
  ASSERT_EQ(status_, 0) << command_;
  const test_util::Config& config = GetParam();
  std::ifstream reference(directory_ / (config.label + ".txt"));
  ASSERT_TRUE(reference) << "no PyTorch output for " << config.label;

  GoldenRun s;
  nn::NetworkObjective<float> network(s.network, nn::LossKind::SoftmaxCrossEntropy, s.data);
  StochasticAdapter<nn::NetworkObjective<float>> f(network);
  auto optimizer = test_util::make<float>(config);
  Vector<float> x = s.x0;
  double worst = 0;
  for (int k = 0; k < kSteps; ++k) {
    ASSERT_TRUE(optimizer->step(f, x, s.batches[std::size_t(k)]).accepted);
    std::string line;
    ASSERT_TRUE(std::getline(reference, line)) << "step " << k + 1;
    std::istringstream values(line);
    Index i = 0;
    for (double torch_value; values >> torch_value; ++i) {
      ASSERT_LT(i, x.size());
      const double difference = std::abs(double(x[i]) - torch_value);
      const double scale = std::max(std::abs(torch_value), kScaleFloor);
      worst = std::max(worst, difference / scale);
      EXPECT_LE(difference, kTolerance * scale)
          << config.label << ", step " << k + 1 << ", parameter " << i << ": hesse " << x[i]
          << ", torch " << torch_value;
    }
    ASSERT_EQ(i, x.size()) << "step " << k + 1;
  }
  RecordProperty("worst_scaled_difference", std::to_string(worst));
  std::printf("%-28s worst |difference| / max(|x|, %.1f) = %.2e\n", config.label.c_str(),
              kScaleFloor, worst);
}

INSTANTIATE_TEST_SUITE_P(FirstOrder, TorchFirstOrder, ::testing::ValuesIn(test_util::configs()),
                         [](const auto& info) { return info.param.label; });

}  // namespace
}  // namespace hesse::optim
