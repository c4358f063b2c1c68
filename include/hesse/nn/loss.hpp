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

/// Targets drawn from the model's own predictive distribution at outputs Z,
/// for the true Fisher (Martens & Grosse 2015, sec. 5) and Sophia's
/// Gauss-Newton-Bartlett estimator (Liu et al. 2023, alg. 2):
///   softmax-cross-entropy  a label from softmax(z)
///   binary-logistic        a label from Bernoulli(sigmoid(z))
///   mse                    z + sqrt(k/2) eps, eps ~ N(0, I): the Gaussian whose
///                          negative log-likelihood is (1/k)|z - y|^2 + const
/// The randomness comes in as `randoms`: randoms_per_sample(kind, k) numbers
/// per sample, uniforms on [0, 1) for the labels and standard normals for
/// mse, so the draws can be made in a fixed order before threads split the
/// work. Y receives [1, B] labels or [k, B] values.
Index randoms_per_sample(LossKind kind, Index outputs);
template <class T>
void sample_targets(LossKind kind, ConstMatrixRef<T> Z, const double* randoms, Matrix<T>& Y);

/// Throws InvalidArgument unless `kind` can be applied to `outputs` network
/// outputs and targets with `target_rows` rows and `num_classes` classes.
void validate_loss(LossKind kind, Index outputs, Index target_rows, int num_classes);

}  // namespace hesse::nn
