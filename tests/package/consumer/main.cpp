// A downstream program built against the installed hesse package.
#include <cstdio>
#include <hesse/hesse.hpp>

int main() {
  hesse::data::Dataset<double> set;
  set.features = hesse::Matrix<double>::Random(3, 8);
  set.targets = hesse::Matrix<double>::Zero(1, 8);
  set.targets(0, 1) = 1;
  set.num_classes = 2;
  const std::vector<hesse::Index> sizes{3, 4, 2};
  hesse::nn::NetworkObjective<double> objective(
      hesse::nn::make_mlp<double>(sizes, hesse::nn::ActivationKind::Tanh),
      hesse::nn::LossKind::SoftmaxCrossEntropy, set);
  const hesse::Vector<double> x = objective.network().initial_parameters(1);
  const auto report = hesse::check_derivatives(objective, x);
  std::printf("consumer: %s (worst error %.1e)\n", report.passed() ? "ok" : "FAILED",
              report.worst_error());
  return report.passed() ? 0 : 1;
}
