#include "hesse/nn/activation.hpp"

#include <array>
#include <cmath>
#include <numbers>

#include "hesse/core/error.hpp"

namespace hesse::nn {
namespace {

struct NamedKind {
  std::string_view name;
  ActivationKind kind;
};
constexpr std::array<NamedKind, 7> kNames{{{"identity", ActivationKind::Identity},
                                           {"relu", ActivationKind::ReLU},
                                           {"leaky-relu", ActivationKind::LeakyReLU},
                                           {"tanh", ActivationKind::Tanh},
                                           {"sigmoid", ActivationKind::Sigmoid},
                                           {"softplus", ActivationKind::Softplus},
                                           {"gelu", ActivationKind::GELU}}};

// Each activation as phi(z), phi'(z, a) and phi''(z, a) with a = phi(z).
// Written as plain scalar functions so the loops below fuse the elementwise
// work into one pass and vectorise where the arithmetic allows.
template <class T>
struct Identity {
  static T f(T z) { return z; }
  static T d1(T, T) { return T(1); }
  static T d2(T, T) { return T(0); }
};
template <class T>
struct Relu {
  static T f(T z) { return z > T(0) ? z : T(0); }
  static T d1(T z, T) { return z > T(0) ? T(1) : T(0); }
  static T d2(T, T) { return T(0); }
};
template <class T>
struct LeakyRelu {
  static constexpr T kSlope = static_cast<T>(kLeakyReluSlope);
  static T f(T z) { return z > T(0) ? z : kSlope * z; }
  static T d1(T z, T) { return z > T(0) ? T(1) : kSlope; }
  static T d2(T, T) { return T(0); }
};
template <class T>
struct Tanh {
  static T f(T z) { return std::tanh(z); }
  static T d1(T, T a) { return T(1) - a * a; }
  static T d2(T, T a) { return T(-2) * a * (T(1) - a * a); }
};
template <class T>
struct Sigmoid {
  static T f(T z) {
    // Split by sign so exp never overflows.
    if (z >= T(0)) return T(1) / (T(1) + std::exp(-z));
    const T e = std::exp(z);
    return e / (T(1) + e);
  }
  static T d1(T, T a) { return a * (T(1) - a); }
  static T d2(T, T a) { return a * (T(1) - a) * (T(1) - T(2) * a); }
};
template <class T>
struct Softplus {
  // log(1 + e^z) = max(z, 0) + log1p(e^-|z|): no overflow for large |z|.
  static T f(T z) { return std::max(z, T(0)) + std::log1p(std::exp(-std::abs(z))); }
  static T d1(T z, T) { return Sigmoid<T>::f(z); }
  static T d2(T z, T) {
    const T s = Sigmoid<T>::f(z);
    return s * (T(1) - s);
  }
};
// Exact GELU z * Phi(z) (Hendrycks & Gimpel 2016), not the tanh approximation.
template <class T>
struct Gelu {
  static T pdf(T z) {
    return static_cast<T>(std::exp(-0.5 * double(z) * double(z)) /
                          std::sqrt(2.0 * std::numbers::pi));
  }
  static T cdf(T z) { return static_cast<T>(0.5 * std::erfc(-double(z) / std::numbers::sqrt2)); }
  static T f(T z) { return z * cdf(z); }
  static T d1(T z, T) { return cdf(z) + z * pdf(z); }
  static T d2(T z, T) { return pdf(z) * (T(2) - z * z); }
};

template <class T, class Visitor>
void visit(ActivationKind kind, Visitor&& visitor) {
  switch (kind) {
    case ActivationKind::Identity: return visitor(Identity<T>{});
    case ActivationKind::ReLU: return visitor(Relu<T>{});
    case ActivationKind::LeakyReLU: return visitor(LeakyRelu<T>{});
    case ActivationKind::Tanh: return visitor(Tanh<T>{});
    case ActivationKind::Sigmoid: return visitor(Sigmoid<T>{});
    case ActivationKind::Softplus: return visitor(Softplus<T>{});
    case ActivationKind::GELU: return visitor(Gelu<T>{});
  }
  HESSE_ASSERT(false, "unhandled activation kind");
}

}  // namespace

std::string_view to_string(ActivationKind kind) {
  for (const auto& entry : kNames)
    if (entry.kind == kind) return entry.name;
  return "unknown";
}

ActivationKind parse_activation(std::string_view name) {
  for (const auto& entry : kNames)
    if (entry.name == name) return entry.kind;
  std::string valid;
  for (const auto& entry : kNames) valid += (valid.empty() ? "" : ", ") + std::string(entry.name);
  throw InvalidArgument("unknown activation '" + std::string(name) + "' (valid: " + valid + ")");
}

bool is_piecewise_linear(ActivationKind kind) {
  return kind == ActivationKind::Identity || kind == ActivationKind::ReLU ||
         kind == ActivationKind::LeakyReLU;
}

template <class T>
void activation_forward(ActivationKind kind, Eigen::Ref<const Matrix<T>> Z, Matrix<T>& A) {
  A.resize(Z.rows(), Z.cols());
  if (kind == ActivationKind::Tanh) {  // Eigen's vectorised tanh
    A.array() = Z.array().tanh();
    return;
  }
  visit<T>(kind, [&](auto phi) {
    const T* z = Z.data();
    T* a = A.data();
    const Index size = Z.size();
    for (Index i = 0; i < size; ++i) a[i] = phi.f(z[i]);
  });
}

template <class T>
void activation_backward(ActivationKind kind, Eigen::Ref<const Matrix<T>> Z, Eigen::Ref<const Matrix<T>> A,
                         Eigen::Ref<const Matrix<T>> dA, Matrix<T>& dZ) {
  dZ.resize(Z.rows(), Z.cols());
  visit<T>(kind, [&](auto phi) {
    const T* z = Z.data();
    const T* a = A.data();
    const T* da = dA.data();
    T* dz = dZ.data();
    const Index size = Z.size();
    for (Index i = 0; i < size; ++i) dz[i] = phi.d1(z[i], a[i]) * da[i];
  });
}

template <class T>
void activation_r_backward(ActivationKind kind, Eigen::Ref<const Matrix<T>> Z, Eigen::Ref<const Matrix<T>> A,
                           Eigen::Ref<const Matrix<T>> RZ, Eigen::Ref<const Matrix<T>> dA, Eigen::Ref<const Matrix<T>> RdA,
                           Matrix<T>& dZ, Matrix<T>& RdZ) {
  dZ.resize(Z.rows(), Z.cols());
  RdZ.resize(Z.rows(), Z.cols());
  const bool second_order_term = !is_piecewise_linear(kind);
  visit<T>(kind, [&](auto phi) {
    const T* z = Z.data();
    const T* a = A.data();
    const T* rz = RZ.data();
    const T* da = dA.data();
    const T* rda = RdA.data();
    T* dz = dZ.data();
    T* rdz = RdZ.data();
    const Index size = Z.size();
    if (second_order_term) {
      for (Index i = 0; i < size; ++i) {
        const T d1 = phi.d1(z[i], a[i]);
        dz[i] = d1 * da[i];
        rdz[i] = phi.d2(z[i], a[i]) * rz[i] * da[i] + d1 * rda[i];
      }
    } else {
      for (Index i = 0; i < size; ++i) {
        const T d1 = phi.d1(z[i], a[i]);
        dz[i] = d1 * da[i];
        rdz[i] = d1 * rda[i];
      }
    }
  });
}

#define HESSE_INSTANTIATE(T)                                                               \
  template void activation_forward<T>(ActivationKind, Eigen::Ref<const Matrix<T>>, Matrix<T>&);       \
  template void activation_backward<T>(ActivationKind, Eigen::Ref<const Matrix<T>>, Eigen::Ref<const Matrix<T>>, \
                                       Eigen::Ref<const Matrix<T>>, Matrix<T>&);                      \
  template void activation_r_backward<T>(ActivationKind, Eigen::Ref<const Matrix<T>>, Eigen::Ref<const Matrix<T>>, \
                                         Eigen::Ref<const Matrix<T>>, Eigen::Ref<const Matrix<T>>,               \
                                         Eigen::Ref<const Matrix<T>>, Matrix<T>&, Matrix<T>&);
HESSE_INSTANTIATE(float)
HESSE_INSTANTIATE(double)
#undef HESSE_INSTANTIATE

}  // namespace hesse::nn
