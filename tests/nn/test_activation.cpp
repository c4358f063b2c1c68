// phi' and phi'' of every activation against central differences of phi.
#include <gtest/gtest.h>

#include <cmath>

#include "hesse/core/error.hpp"
#include "hesse/nn/activation.hpp"

using namespace hesse;
using namespace hesse::nn;

namespace {

const ActivationKind kAll[] = {ActivationKind::Identity, ActivationKind::ReLU,
                               ActivationKind::LeakyReLU, ActivationKind::Tanh,
                               ActivationKind::Sigmoid,  ActivationKind::Softplus,
                               ActivationKind::GELU};

Matrix<double> apply(ActivationKind kind, const Matrix<double>& z) {
  Matrix<double> a;
  activation_forward<double>(kind, z, a);
  return a;
}

class ActivationDerivatives : public ::testing::TestWithParam<ActivationKind> {};

TEST_P(ActivationDerivatives, FirstAndSecondDerivativesMatchFiniteDifferences) {
  const ActivationKind kind = GetParam();
  // Points away from the ReLU kink by much more than the step.
  Matrix<double> z(1, 9);
  z << -6.0, -2.5, -1.0, -0.3, -1e-2, 2e-2, 0.7, 1.9, 5.5;
  const double h = 1e-5;
  const Matrix<double> a = apply(kind, z);
  const Matrix<double> ones = Matrix<double>::Ones(1, z.cols());
  const Matrix<double> zeros = Matrix<double>::Zero(1, z.cols());
  // d1 = phi'(z) via the backward pass with dA = 1.
  Matrix<double> d1;
  activation_backward<double>(kind, z, a, ones, d1);
  // d2 = phi''(z) via the R-op: RdZ = phi'' RZ dA + phi' RdA with RZ = dA = 1, RdA = 0.
  Matrix<double> dz, d2;
  activation_r_backward<double>(kind, z, a, ones, ones, zeros, dz, d2);
  const Matrix<double> plus = apply(kind, z.array() + h);
  const Matrix<double> minus = apply(kind, z.array() - h);
  Matrix<double> d1_plus, d1_minus;
  activation_backward<double>(kind, z.array() + h, plus, ones, d1_plus);
  activation_backward<double>(kind, z.array() - h, minus, ones, d1_minus);
  for (Index i = 0; i < z.cols(); ++i) {
    const double fd1 = (plus(0, i) - minus(0, i)) / (2 * h);
    const double fd2 = (d1_plus(0, i) - d1_minus(0, i)) / (2 * h);
    EXPECT_NEAR(d1(0, i), fd1, 1e-8 * std::max(1.0, std::abs(fd1))) << to_string(kind) << " z=" << z(0, i);
    EXPECT_NEAR(d2(0, i), fd2, 1e-6 * std::max(1.0, std::abs(fd2))) << to_string(kind) << " z=" << z(0, i);
    EXPECT_DOUBLE_EQ(dz(0, i), d1(0, i));
  }
}

INSTANTIATE_TEST_SUITE_P(All, ActivationDerivatives, ::testing::ValuesIn(kAll),
                         [](const auto& info) {
                           std::string name(to_string(info.param));
                           std::erase(name, '-');
                           return name;
                         });

TEST(Activation, ReluDerivativeAtTheKinkIsZeroLikePyTorch) {
  Matrix<double> z = Matrix<double>::Zero(1, 1);
  Matrix<double> a = apply(ActivationKind::ReLU, z), d1;
  activation_backward<double>(ActivationKind::ReLU, z, a, Matrix<double>::Ones(1, 1), d1);
  EXPECT_EQ(d1(0, 0), 0.0);
}

TEST(Activation, LargeArgumentsStayFinite) {
  Matrix<double> z(1, 4);
  z << -800, -50, 50, 800;
  for (const ActivationKind kind : kAll) {
    const Matrix<double> a = apply(kind, z);
    EXPECT_TRUE(a.allFinite()) << to_string(kind);
  }
  EXPECT_DOUBLE_EQ(apply(ActivationKind::Softplus, z)(0, 3), 800.0);
  EXPECT_DOUBLE_EQ(apply(ActivationKind::Sigmoid, z)(0, 0), 0.0);
}

TEST(Activation, ParseNamesRoundTripAndRejectUnknown) {
  for (const ActivationKind kind : kAll) EXPECT_EQ(parse_activation(to_string(kind)), kind);
  try {
    parse_activation("swish");
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("swish"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("gelu"), std::string::npos);
  }
}

}  // namespace
