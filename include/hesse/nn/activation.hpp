// Elementwise activations with their first and second derivatives, which the
// R-op (Pearlmutter 1994) needs for exact Hessian-vector products.
#pragma once

#include <string>
#include <string_view>

#include "hesse/core/types.hpp"

namespace hesse::nn {

enum class ActivationKind { Identity, ReLU, LeakyReLU, Tanh, Sigmoid, Softplus, GELU };

/// Lower-case name used by the CLI and in summaries ("relu", "gelu", ...).
std::string_view to_string(ActivationKind kind);
/// Parses a name as printed by to_string; throws InvalidArgument listing the valid names.
ActivationKind parse_activation(std::string_view name);

/// Default negative slope of LeakyReLU, as in PyTorch.
inline constexpr double kLeakyReluSlope = 0.01;

/// A = phi(Z), elementwise.  Z, A: [units, B]
template <class T>
void activation_forward(ActivationKind kind, Eigen::Ref<const Matrix<T>> Z, Matrix<T>& A);

/// dZ = phi'(Z) .* dA: the backward pass, and also the R-forward pass
/// (RA = phi'(Z) .* RZ). A = phi(Z) is given because the tanh and sigmoid
/// derivatives are cheapest from it. At the ReLU kink z = 0 the derivative is
/// taken as 0, the convention of PyTorch and JAX.
template <class T>
void activation_backward(ActivationKind kind, Eigen::Ref<const Matrix<T>> Z, Eigen::Ref<const Matrix<T>> A,
                         Eigen::Ref<const Matrix<T>> dA, Matrix<T>& dZ);

/// The backward pass and its R-op in one sweep (Pearlmutter 1994):
///   dZ  = phi'(Z) .* dA
///   RdZ = phi''(Z) .* RZ .* dA + phi'(Z) .* RdA
template <class T>
void activation_r_backward(ActivationKind kind, Eigen::Ref<const Matrix<T>> Z, Eigen::Ref<const Matrix<T>> A,
                           Eigen::Ref<const Matrix<T>> RZ, Eigen::Ref<const Matrix<T>> dA, Eigen::Ref<const Matrix<T>> RdA,
                           Matrix<T>& dZ, Matrix<T>& RdZ);

/// Whether phi'' is zero almost everywhere (piecewise linear activations), which
/// lets the R-op skip the second-derivative term.
bool is_piecewise_linear(ActivationKind kind);

}  // namespace hesse::nn
