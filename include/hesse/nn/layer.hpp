// Layers of a feed-forward network. A layer holds no parameters itself: it
// reads its slice of the network's one flat parameter vector (`params`) and
// writes its slice of a flat gradient (`grad`) or Hessian-vector product
// (`Hv`), so an L-BFGS vector, a checkpoint and an MPI allreduce are each one
// contiguous array. Layers are immutable after construction and can be shared.
//
// Every layer has three passes, with shapes beside them (B = batch size):
//   forward     X: [in, B] -> Y: [out, B]
//   backward    dY: [out, B] -> dX: [in, B], grad += dL/dparams
//   R-op        directional derivatives along a parameter direction v
//               (Pearlmutter 1994): r_forward gives RY = d/de Y(params + e v),
//               r_backward gives R(dX) and Hv += R(dL/dparams).
#pragma once

#include <memory>
#include <string>

#include "hesse/core/rng.hpp"
#include "hesse/core/types.hpp"
#include "hesse/nn/activation.hpp"

namespace hesse::nn {

template <class T>
using ConstRef = Eigen::Ref<const Matrix<T>>;

/// Parameter initialisation schemes.
enum class Init {
  Auto,           ///< He for ReLU-like activations that follow, Xavier otherwise
  HeNormal,       ///< N(0, 2 / fan_in)            (He et al. 2015)
  XavierUniform,  ///< U(+-sqrt(6 / (fan_in + fan_out))) (Glorot & Bengio 2010)
};

template <class T>
class Layer {
 public:
  virtual ~Layer() = default;
  virtual std::string describe() const = 0;
  virtual Index input_size() const = 0;
  virtual Index output_size() const = 0;
  virtual Index num_parameters() const { return 0; }
  /// Initialises this layer's slice of the parameters.
  virtual void initialize(T* params, Init init, Rng& rng) const {
    (void)params, (void)init, (void)rng;
  }

  // X: [in, B] -> Y: [out, B]
  virtual void forward(const T* params, ConstRef<T> X, Matrix<T>& Y) const = 0;

  // dY: [out, B] -> dX: [in, B] (skipped when dX is null); grad += dL/dparams
  // (skipped when grad is null).
  virtual void backward(const T* params, ConstRef<T> X, const Matrix<T>& Y, const Matrix<T>& dY,
                        Matrix<T>* dX, T* grad) const = 0;

  // RY = W RX + V X (+ ...): the forward pass differentiated along direction v
  // of the parameters and RX of the input (RX null: the input does not depend
  // on the parameters, as for the first layer).
  virtual void r_forward(const T* params, const T* v, ConstRef<T> X, const Matrix<T>* RX,
                         const Matrix<T>& Y, Matrix<T>& RY) const = 0;

  // Backward pass and its R-op together. Inputs: the forward values X, Y, the
  // R-forward values RX (may be null), RY, the adjoint dY and its R-op RdY.
  // Outputs: dX and RdX (both skipped when dX is null), Hv += R(dL/dparams),
  // grad += dL/dparams when grad is not null.
  virtual void r_backward(const T* params, const T* v, ConstRef<T> X, const Matrix<T>* RX,
                          const Matrix<T>& Y, const Matrix<T>& RY, const Matrix<T>& dY,
                          const Matrix<T>& RdY, Matrix<T>* dX, Matrix<T>* RdX, T* Hv,
                          T* grad) const = 0;
};

/// Fully connected layer Y = W X + b 1^T with W: [out, in], b: [out]. The
/// parameter slice holds W column-major, then b.
template <class T>
class Dense final : public Layer<T> {
 public:
  Dense(Index inputs, Index outputs);
  std::string describe() const override;
  Index input_size() const override { return inputs_; }
  Index output_size() const override { return outputs_; }
  Index num_parameters() const override { return outputs_ * inputs_ + outputs_; }
  void initialize(T* params, Init init, Rng& rng) const override;
  void forward(const T* params, ConstRef<T> X, Matrix<T>& Y) const override;
  void backward(const T* params, ConstRef<T> X, const Matrix<T>& Y, const Matrix<T>& dY,
                Matrix<T>* dX, T* grad) const override;
  void r_forward(const T* params, const T* v, ConstRef<T> X, const Matrix<T>* RX,
                 const Matrix<T>& Y, Matrix<T>& RY) const override;
  void r_backward(const T* params, const T* v, ConstRef<T> X, const Matrix<T>* RX,
                  const Matrix<T>& Y, const Matrix<T>& RY, const Matrix<T>& dY,
                  const Matrix<T>& RdY, Matrix<T>* dX, Matrix<T>* RdX, T* Hv,
                  T* grad) const override;

 private:
  // out += [dY X^T, dY 1]: the parameters' adjoint, laid out as the slice.
  void accumulate_weight_gradient(ConstRef<T> X, const Matrix<T>& dY, T* out) const;

  Index inputs_;
  Index outputs_;
};

/// Elementwise activation A = phi(Z); no parameters.
template <class T>
class Activation final : public Layer<T> {
 public:
  Activation(ActivationKind kind, Index size);
  std::string describe() const override;
  ActivationKind kind() const { return kind_; }
  Index input_size() const override { return size_; }
  Index output_size() const override { return size_; }
  void forward(const T* params, ConstRef<T> X, Matrix<T>& Y) const override;
  void backward(const T* params, ConstRef<T> X, const Matrix<T>& Y, const Matrix<T>& dY,
                Matrix<T>* dX, T* grad) const override;
  void r_forward(const T* params, const T* v, ConstRef<T> X, const Matrix<T>* RX,
                 const Matrix<T>& Y, Matrix<T>& RY) const override;
  void r_backward(const T* params, const T* v, ConstRef<T> X, const Matrix<T>* RX,
                  const Matrix<T>& Y, const Matrix<T>& RY, const Matrix<T>& dY,
                  const Matrix<T>& RdY, Matrix<T>* dX, Matrix<T>* RdX, T* Hv,
                  T* grad) const override;

 private:
  ActivationKind kind_;
  Index size_;
};

extern template class Dense<float>;
extern template class Dense<double>;
extern template class Activation<float>;
extern template class Activation<double>;

}  // namespace hesse::nn
