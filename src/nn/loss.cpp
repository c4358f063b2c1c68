#include "hesse/nn/loss.hpp"

#include <cmath>
#include <string>

#include "hesse/core/error.hpp"

namespace hesse::nn {

std::string_view to_string(LossKind kind) {
  switch (kind) {
    case LossKind::MeanSquaredError: return "mse";
    case LossKind::SoftmaxCrossEntropy: return "softmax-cross-entropy";
    case LossKind::BinaryLogistic: return "binary-logistic";
  }
  return "unknown";
}

LossKind parse_loss(std::string_view name) {
  if (name == "mse") return LossKind::MeanSquaredError;
  if (name == "softmax-cross-entropy" || name == "cross-entropy") return LossKind::SoftmaxCrossEntropy;
  if (name == "binary-logistic") return LossKind::BinaryLogistic;
  throw InvalidArgument("unknown loss '" + std::string(name) +
                        "' (valid: mse, softmax-cross-entropy, binary-logistic)");
}

void validate_loss(LossKind kind, Index outputs, Index target_rows, int num_classes) {
  const std::string name(to_string(kind));
  switch (kind) {
    case LossKind::MeanSquaredError:
      HESSE_REQUIRE(target_rows == outputs || (target_rows == 1 && num_classes == outputs),
                    "loss " + name + ": the network has " + std::to_string(outputs) +
                        " outputs but the targets have " + std::to_string(target_rows) +
                        " rows" + (num_classes > 0 ? " and " + std::to_string(num_classes) + " classes" : ""));
      break;
    case LossKind::SoftmaxCrossEntropy:
      HESSE_REQUIRE(num_classes >= 2 && target_rows == 1,
                    "loss " + name + " needs class labels (a classification data set)");
      HESSE_REQUIRE(outputs == num_classes, "loss " + name + ": the network has " +
                                                std::to_string(outputs) + " outputs but the data has " +
                                                std::to_string(num_classes) + " classes");
      break;
    case LossKind::BinaryLogistic:
      HESSE_REQUIRE(num_classes == 2 && target_rows == 1,
                    "loss " + name + " needs a two-class data set with labels 0 and 1");
      HESSE_REQUIRE(outputs == 1, "loss " + name + " needs a network with 1 output, not " +
                                      std::to_string(outputs));
      break;
  }
}

namespace {

// Softmax of column z into p, returning logsumexp(z); shifted by max(z) so
// exp never overflows.
template <class T, class Column, class Out>
T softmax_column(const Column& z, Out&& p) {
  const T shift = z.maxCoeff();
  p = (z.array() - shift).exp();
  const T total = p.sum();
  p /= total;
  return shift + std::log(total);
}

// One column's softmax probabilities: this thread's buffer, so that a call
// allocates only when the class count grows (the loss runs on every chunk).
template <class T>
Vector<T>& softmax_scratch(Index k) {
  thread_local Vector<T> p;
  if (p.size() != k) p.resize(k);
  return p;
}

template <class T>
T sigmoid(T z) {
  if (z >= T(0)) return T(1) / (T(1) + std::exp(-z));
  const T e = std::exp(z);
  return e / (T(1) + e);
}

}  // namespace

template <class T>
double loss_value_and_gradient(LossKind kind, ConstMatrixRef<T> Z, ConstMatrixRef<T> Y, T scale,
                               Matrix<T>* dZ) {
  const Index k = Z.rows();
  const Index batch = Z.cols();
  if (dZ) dZ->resize(k, batch);
  double total = 0;
  switch (kind) {
    case LossKind::MeanSquaredError: {
      const bool one_hot = Y.rows() == 1 && k > 1;
      const T per_entry = scale / T(k);
      for (Index i = 0; i < batch; ++i) {
        for (Index j = 0; j < k; ++j) {
          const T target = one_hot ? T(static_cast<Index>(Y(0, i)) == j) : Y(j, i);
          const T residual = Z(j, i) - target;
          total += double(per_entry) * double(residual) * double(residual);
          if (dZ) (*dZ)(j, i) = T(2) * per_entry * residual;
        }
      }
      break;
    }
    case LossKind::SoftmaxCrossEntropy: {
      Vector<T>& p = softmax_scratch<T>(k);
      for (Index i = 0; i < batch; ++i) {
        const auto label = static_cast<Index>(Y(0, i));
        const T log_normalizer = softmax_column<T>(Z.col(i), p);
        total += double(scale) * (double(log_normalizer) - double(Z(label, i)));
        if (dZ) {
          dZ->col(i) = scale * p;
          (*dZ)(label, i) -= scale;
        }
      }
      break;
    }
    case LossKind::BinaryLogistic: {
      for (Index i = 0; i < batch; ++i) {
        const T z = Z(0, i);
        const T y = Y(0, i);
        // log(1 + e^z) - y z, with log1p(e^-|z|) + max(z, 0) for stability.
        const T softplus = std::max(z, T(0)) + std::log1p(std::exp(-std::abs(z)));
        total += double(scale) * (double(softplus) - double(y) * double(z));
        if (dZ) (*dZ)(0, i) = scale * (sigmoid(z) - y);
      }
      break;
    }
  }
  return total;
}

template <class T>
void loss_hessian_product(LossKind kind, ConstMatrixRef<T> Z, ConstMatrixRef<T> Y,
                          ConstMatrixRef<T> RZ, T scale, Matrix<T>& out) {
  (void)Y;
  const Index k = Z.rows();
  const Index batch = Z.cols();
  out.resize(k, batch);
  switch (kind) {
    case LossKind::MeanSquaredError: out = (T(2) * scale / T(k)) * RZ; break;
    case LossKind::SoftmaxCrossEntropy: {
      // H = diag(p) - p p^T, so H r = p .* r - p (p . r).
      Vector<T>& p = softmax_scratch<T>(k);
      for (Index i = 0; i < batch; ++i) {
        softmax_column<T>(Z.col(i), p);
        const T p_dot_r = p.dot(RZ.col(i));
        out.col(i) = scale * (p.array() * (RZ.col(i).array() - p_dot_r)).matrix();
      }
      break;
    }
    case LossKind::BinaryLogistic:
      for (Index i = 0; i < batch; ++i) {
        const T s = sigmoid(Z(0, i));
        out(0, i) = scale * s * (T(1) - s) * RZ(0, i);
      }
      break;
  }
}

#define HESSE_INSTANTIATE(T)                                                                  \
  template double loss_value_and_gradient<T>(LossKind, ConstMatrixRef<T>, ConstMatrixRef<T>, \
                                             T, Matrix<T>*);                                 \
  template void loss_hessian_product<T>(LossKind, ConstMatrixRef<T>, ConstMatrixRef<T>,      \
                                        ConstMatrixRef<T>, T, Matrix<T>&);
HESSE_INSTANTIATE(float)
HESSE_INSTANTIATE(double)
#undef HESSE_INSTANTIATE


Index randoms_per_sample(LossKind kind, Index outputs) {
  return kind == LossKind::MeanSquaredError ? outputs : 1;
}

template <class T>
void sample_targets(LossKind kind, ConstMatrixRef<T> Z, const double* randoms, Matrix<T>& Y) {
  const Index k = Z.rows(), batch = Z.cols();
  switch (kind) {
    case LossKind::MeanSquaredError: {
      Y.resize(k, batch);
      const T spread = std::sqrt(T(k) / T(2));
      for (Index i = 0; i < batch; ++i)
        for (Index j = 0; j < k; ++j) Y(j, i) = Z(j, i) + spread * T(randoms[i * k + j]);
      return;
    }
    case LossKind::SoftmaxCrossEntropy: {
      Y.resize(1, batch);
      for (Index i = 0; i < batch; ++i) {
        const T shift = Z.col(i).maxCoeff();
        double total = 0;
        for (Index j = 0; j < k; ++j) total += std::exp(double(Z(j, i) - shift));
        // Inverse CDF: the first class whose cumulative probability exceeds u.
        const double target = randoms[i] * total;
        double cumulative = 0;
        Index label = k - 1;
        for (Index j = 0; j < k; ++j) {
          cumulative += std::exp(double(Z(j, i) - shift));
          if (target < cumulative) {
            label = j;
            break;
          }
        }
        Y(0, i) = T(label);
      }
      return;
    }
    case LossKind::BinaryLogistic: {
      Y.resize(1, batch);
      for (Index i = 0; i < batch; ++i) {
        const double p = 1.0 / (1.0 + std::exp(-double(Z(0, i))));
        Y(0, i) = T(randoms[i] < p ? 1 : 0);
      }
      return;
    }
  }
}

template void sample_targets<float>(LossKind, ConstMatrixRef<float>, const double*, Matrix<float>&);
template void sample_targets<double>(LossKind, ConstMatrixRef<double>, const double*,
                                     Matrix<double>&);

}  // namespace hesse::nn
