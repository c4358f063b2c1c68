// ClippedObjective: a StochasticObjective whose batch gradients are rescaled
// to at most `clip` in norm, like torch.nn.utils.clip_grad_norm_ applied to
// the whole batch gradient. fit()'s gradient_clip_norm wraps the network in
// one; any optimizer can be handed one directly.
//
//   hesse::optim::StochasticAdapter<hesse::nn::NetworkObjective<float>> f(network);
//   hesse::optim::ClippedObjective<float> clipped(f, 1.0);
//   optimizer.step(clipped, x, batch);
#pragma once

#include <span>
#include <vector>

#include "hesse/optim/optimizer.hpp"

namespace hesse::optim {

/// Forwards every call to `f`, which must outlive it. value_and_gradient
/// returns the clipped gradient. An optimizer that assembles a batch
/// gradient from parts (stochastic L-BFGS) takes them from
/// value_and_unclipped_gradient and clips their sum with clip_gradient, so
/// the batch gradient is clipped as a whole. The curvature products and the
/// per-sample squared gradients are not clipped. `clip` <= 0 clips nothing.
template <class T>
class ClippedObjective final : public StochasticObjective<T> {
 public:
  ClippedObjective(StochasticObjective<T>& f, double clip) : f_(f), clip_(clip) {}

  Index dimension() const override { return f_.dimension(); }
  Index num_samples() const override { return f_.num_samples(); }
  void select_batch(std::span<const Index> indices) override { f_.select_batch(indices); }
  void select_all() override { f_.select_all(); }
  T value_and_gradient(const Vector<T>& x, Vector<T>* gradient) override {
    const T value = f_.value_and_gradient(x, gradient);
    if (gradient) clip_gradient(*gradient);
    return value;
  }
  T value_and_unclipped_gradient(const Vector<T>& x, Vector<T>* gradient) override {
    return f_.value_and_unclipped_gradient(x, gradient);
  }
  void clip_gradient(Vector<T>& gradient) override {
    f_.clip_gradient(gradient);
    if (clip_ <= 0) return;
    const double norm = static_cast<double>(gradient.norm());
    if (norm > clip_) gradient *= static_cast<T>(clip_ / norm);
  }
  // The wrapped objective's threads go on with `then` only when nothing
  // comes between the gradient and it.
  T value_and_gradient_then(const Vector<T>& x, Vector<T>& gradient,
                            const typename StochasticObjective<T>::AfterGradient& then) override {
    if (clip_ > 0) return StochasticObjective<T>::value_and_gradient_then(x, gradient, then);
    return f_.value_and_gradient_then(x, gradient, then);
  }
  bool has_hessian_vector() const override { return f_.has_hessian_vector(); }
  void hessian_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& Hv) override {
    f_.hessian_vector(x, v, Hv);
  }
  bool has_gauss_newton_vector() const override { return f_.has_gauss_newton_vector(); }
  void gauss_newton_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& Gv) override {
    f_.gauss_newton_vector(x, v, Gv);
  }
  bool has_squared_gradient_sum() const override { return f_.has_squared_gradient_sum(); }
  T squared_gradient_sum(const Vector<T>& x, Vector<T>& out, Vector<T>* gradient) override {
    const T value = f_.squared_gradient_sum(x, out, gradient);
    if (gradient) clip_gradient(*gradient);
    return value;
  }
  nn::NetworkObjective<T>* network() override { return f_.network(); }
  std::vector<ParameterBlock> parameter_blocks() const override { return f_.parameter_blocks(); }

 private:
  StochasticObjective<T>& f_;
  double clip_;
};

}  // namespace hesse::optim
