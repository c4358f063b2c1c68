#include "hesse/nn/layer.hpp"

#include <cmath>

#include "hesse/core/error.hpp"

namespace hesse::nn {

// ------------------------------------------------------------------ Dense

template <class T>
Dense<T>::Dense(Index inputs, Index outputs) : inputs_(inputs), outputs_(outputs) {
  HESSE_REQUIRE(inputs > 0 && outputs > 0, "Dense layer: sizes must be positive, got " +
                                               std::to_string(inputs) + " -> " +
                                               std::to_string(outputs));
}

template <class T>
std::string Dense<T>::describe() const {
  return "Dense(" + std::to_string(inputs_) + " -> " + std::to_string(outputs_) + ")";
}

template <class T>
void Dense<T>::initialize(T* params, Init init, Rng& rng) const {
  VectorMap<T> weights(params, outputs_ * inputs_);
  if (init == Init::HeNormal) {
    fill_normal<T>(rng, weights, static_cast<T>(std::sqrt(2.0 / double(inputs_))));
  } else {
    const T limit = static_cast<T>(std::sqrt(6.0 / double(inputs_ + outputs_)));
    fill_uniform<T>(rng, weights, -limit, limit);
  }
  VectorMap<T>(params + outputs_ * inputs_, outputs_).setZero();
}

template <class T>
void Dense<T>::forward(const T* params, ConstRef<T> X, Matrix<T>& Y) const {
  ConstMatrixMap<T> W(params, outputs_, inputs_);
  ConstVectorMap<T> b(params + outputs_ * inputs_, outputs_);
  Y.resize(outputs_, X.cols());
  Y.noalias() = W * X;
  Y.colwise() += b;
}

template <class T>
void Dense<T>::accumulate_weight_gradient(ConstRef<T> X, const Matrix<T>& dY, T* out) const {
  MatrixMap<T>(out, outputs_, inputs_).noalias() += dY * X.transpose();
  VectorMap<T>(out + outputs_ * inputs_, outputs_) += dY.rowwise().sum();
}

template <class T>
void Dense<T>::backward(const T* params, ConstRef<T> X, const Matrix<T>& /*Y*/,
                        const Matrix<T>& dY, Matrix<T>* dX, T* grad) const {
  if (grad) accumulate_weight_gradient(X, dY, grad);
  if (dX) {
    dX->resize(inputs_, dY.cols());
    dX->noalias() = ConstMatrixMap<T>(params, outputs_, inputs_).transpose() * dY;
  }
}

template <class T>
void Dense<T>::r_forward(const T* params, const T* v, ConstRef<T> X, const Matrix<T>* RX,
                         const Matrix<T>& /*Y*/, Matrix<T>& RY) const {
  ConstMatrixMap<T> W(params, outputs_, inputs_);
  ConstMatrixMap<T> V(v, outputs_, inputs_);
  ConstVectorMap<T> vb(v + outputs_ * inputs_, outputs_);
  RY.resize(outputs_, X.cols());
  RY.noalias() = V * X;
  if (RX) RY.noalias() += W * (*RX);
  RY.colwise() += vb;
}

template <class T>
void Dense<T>::r_backward(const T* params, const T* v, ConstRef<T> X, const Matrix<T>* RX,
                          const Matrix<T>& /*Y*/, const Matrix<T>& /*RY*/, const Matrix<T>& dY,
                          const Matrix<T>& RdY, Matrix<T>* dX, Matrix<T>* RdX, T* Hv,
                          T* grad) const {
  ConstMatrixMap<T> W(params, outputs_, inputs_);
  ConstMatrixMap<T> V(v, outputs_, inputs_);
  // dW = dY X^T, so R(dW) = R(dY) X^T + dY R(X)^T; db = dY 1, so R(db) = R(dY) 1.
  accumulate_weight_gradient(X, RdY, Hv);
  if (RX) MatrixMap<T>(Hv, outputs_, inputs_).noalias() += dY * RX->transpose();
  if (grad) accumulate_weight_gradient(X, dY, grad);
  if (dX) {
    // dX = W^T dY, so R(dX) = W^T R(dY) + V^T dY.
    dX->resize(inputs_, dY.cols());
    dX->noalias() = W.transpose() * dY;
    RdX->resize(inputs_, dY.cols());
    RdX->noalias() = W.transpose() * RdY;
    RdX->noalias() += V.transpose() * dY;
  }
}

// ------------------------------------------------------------- Activation

template <class T>
Activation<T>::Activation(ActivationKind kind, Index size) : kind_(kind), size_(size) {
  HESSE_REQUIRE(size > 0, "Activation layer: size must be positive");
}

template <class T>
std::string Activation<T>::describe() const {
  return std::string(to_string(kind_));
}

template <class T>
void Activation<T>::forward(const T*, ConstRef<T> X, Matrix<T>& Y) const {
  activation_forward<T>(kind_, X, Y);
}

template <class T>
void Activation<T>::backward(const T*, ConstRef<T> X, const Matrix<T>& Y, const Matrix<T>& dY,
                             Matrix<T>* dX, T*) const {
  if (dX) activation_backward<T>(kind_, X, Y, dY, *dX);
}

template <class T>
void Activation<T>::r_forward(const T*, const T*, ConstRef<T> X, const Matrix<T>* RX,
                              const Matrix<T>& Y, Matrix<T>& RY) const {
  if (!RX) {  // an activation applied to the network input: RX = 0
    RY.setZero(size_, X.cols());
    return;
  }
  activation_backward<T>(kind_, X, Y, *RX, RY);  // RY = phi'(X) .* RX
}

template <class T>
void Activation<T>::r_backward(const T*, const T*, ConstRef<T> X, const Matrix<T>* RX,
                               const Matrix<T>& Y, const Matrix<T>& /*RY*/, const Matrix<T>& dY,
                               const Matrix<T>& RdY, Matrix<T>* dX, Matrix<T>* RdX, T*,
                               T*) const {
  // As the first layer (RX null) nothing below needs dX or RdX.
  if (RX && dX) activation_r_backward<T>(kind_, X, Y, *RX, dY, RdY, *dX, *RdX);
}

template class Dense<float>;
template class Dense<double>;
template class Activation<float>;
template class Activation<double>;

}  // namespace hesse::nn
