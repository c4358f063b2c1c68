// Golden comparison with an independent implementation: the loss, gradient
// and Hessian-vector product of the same network in PyTorch (Debian's
// python3-torch, double precision, Hessian-vector product by double
// backward). Skipped, with the reason, when PyTorch is not installed.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "hesse/nn/network_objective.hpp"
#include "nn_test_util.hpp"

using namespace hesse;
using namespace hesse::nn;

namespace {

const char* kPython = "/usr/bin/python3";  // Debian's python3-* modules import only here

bool torch_available() {
  static const bool available =
      std::filesystem::exists(kPython) &&
      std::system((std::string(kPython) + " -c 'import torch' >/dev/null 2>&1").c_str()) == 0;
  return available;
}

template <class M>
void write_matrix(const std::filesystem::path& path, const M& m) {
  std::ofstream out(path);
  out.precision(17);
  for (Index i = 0; i < m.rows(); ++i) {
    for (Index j = 0; j < m.cols(); ++j) out << (j ? " " : "") << m(i, j);
    out << "\n";
  }
}

Vector<double> read_line(std::istream& in) {
  std::string line;
  std::getline(in, line);
  std::istringstream values(line);
  std::vector<double> numbers;
  for (double v; values >> v;) numbers.push_back(v);
  return Eigen::Map<Vector<double>>(numbers.data(), Index(numbers.size()));
}

struct Case {
  ActivationKind activation;
  LossKind loss;
};

class TorchReference : public ::testing::TestWithParam<Case> {};

TEST_P(TorchReference, LossGradientAndHessianVectorProductAgree) {
  if (!torch_available()) GTEST_SKIP() << "PyTorch (python3-torch) is not installed";
  const auto [activation, loss] = GetParam();
  const Index outputs = test_util::outputs_for(loss, 4);
  const std::vector<Index> sizes{6, 8, 5, outputs};
  const auto set = test_util::random_dataset<double>(6, 17, outputs, loss, 31);
  NetworkObjective<double> objective(make_mlp<double>(sizes, activation), loss, set);
  const Vector<double> x = objective.network().initial_parameters(12);
  Rng rng(5);
  Vector<double> v(x.size());
  fill_normal<double>(rng, v);

  const auto dir = std::filesystem::temp_directory_path() /
                   ("hesse_torch_" + std::to_string(::getpid()) + "_" +
                    std::string(to_string(activation)) + "_" + std::string(to_string(loss)));
  std::filesystem::create_directories(dir);
  write_matrix(dir / "features.txt", set.features.transpose());
  write_matrix(dir / "targets.txt", set.targets.transpose());
  write_matrix(dir / "x.txt", x.transpose());
  write_matrix(dir / "v.txt", v.transpose());
  std::string spec;
  for (const Index s : sizes) spec += (spec.empty() ? "" : "-") + std::to_string(s);
  const std::string command = std::string(kPython) + " " + HESSE_TESTS_DIR +
                              "/nn/torch_reference.py " + dir.string() + " " +
                              std::string(to_string(activation)) + " " +
                              std::string(to_string(loss)) + " " + spec;
  ASSERT_EQ(std::system(command.c_str()), 0) << command;

  std::ifstream reference(dir / "reference.txt");
  const Vector<double> torch_value = read_line(reference);
  const Vector<double> torch_gradient = read_line(reference);
  const Vector<double> torch_hv = read_line(reference);
  std::filesystem::remove_all(dir);

  Vector<double> gradient, hv;
  const double value = objective.value_and_gradient(x, &gradient);
  objective.hessian_vector(x, v, hv);
  ASSERT_EQ(torch_gradient.size(), x.size());
  ASSERT_EQ(torch_hv.size(), x.size());
  EXPECT_NEAR(value, torch_value[0], 1e-12 * std::abs(torch_value[0]));
  EXPECT_LT((gradient - torch_gradient).norm(), 1e-10 * torch_gradient.norm());
  EXPECT_LT((hv - torch_hv).norm(), 1e-10 * torch_hv.norm());
}

INSTANTIATE_TEST_SUITE_P(
    Networks, TorchReference,
    ::testing::Values(Case{ActivationKind::ReLU, LossKind::SoftmaxCrossEntropy},
                      Case{ActivationKind::Tanh, LossKind::MeanSquaredError},
                      Case{ActivationKind::GELU, LossKind::SoftmaxCrossEntropy},
                      Case{ActivationKind::Softplus, LossKind::BinaryLogistic},
                      Case{ActivationKind::Sigmoid, LossKind::BinaryLogistic},
                      Case{ActivationKind::LeakyReLU, LossKind::MeanSquaredError}),
    [](const auto& info) {
      std::string name = std::string(to_string(info.param.activation)) + "_" +
                         std::string(to_string(info.param.loss));
      std::erase(name, '-');
      return name;
    });

}  // namespace
