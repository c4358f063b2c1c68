// Losses of a network's outputs Z: [k, B] against targets Y: [t, B].
//
// Every function takes `scale`, the weight of one sample (1/N for a mean over
// N samples), so a large set can be processed in chunks whose results add up.
//
//   mse                  l(z, y) = (1/k) |z - y|^2  (PyTorch's MSELoss: mean over
//                        all k*N entries); y one-hot when targets hold class labels
//   softmax-cross-entropy l(z, y) = logsumexp(z) - z_y, y an integer label
//   binary-logistic      l(z, y) = log(1 + e^z) - y z, k = 1, y in {0, 1}
//
// All three are convex in z, so the Gauss-Newton matrix J^T H_l J is positive
// semi-definite (Schraudolph 2002; Martens 2010).
#pragma once

#include <string_view>

#include "hesse/core/types.hpp"

namespace hesse::nn {

enum class LossKind { MeanSquaredError, SoftmaxCrossEntropy, BinaryLogistic };

std::string_view to_string(LossKind kind);
/// Parses "mse", "softmax-cross-entropy" (or "cross-entropy"), "binary-logistic".
LossKind parse_loss(std::string_view name);

template <class T>
using ConstMatrixRef = Eigen::Ref<const Matrix<T>>;

/// Sum over samples of scale * l(z_i, y_i). If dZ != nullptr it receives
/// scale * dl/dz, [k, B].
template <class T>
double loss_value_and_gradient(LossKind kind, ConstMatrixRef<T> Z, ConstMatrixRef<T> Y, T scale,
                               Matrix<T>* dZ);

/// out = scale * H_l(z_i) RZ_i for every sample i, where H_l is the Hessian of
/// the loss with respect to the outputs: [k, B].
template <class T>
void loss_hessian_product(LossKind kind, ConstMatrixRef<T> Z, ConstMatrixRef<T> Y,
                          ConstMatrixRef<T> RZ, T scale, Matrix<T>& out);

/// Throws InvalidArgument unless `kind` can be applied to `outputs` network
/// outputs and targets with `target_rows` rows and `num_classes` classes.
void validate_loss(LossKind kind, Index outputs, Index target_rows, int num_classes);

}  // namespace hesse::nn
