// A network objective behind the plain StochasticObjective interface: its
// value_and_gradient_then is the base class's (the gradient, then a region
// of its own), where StochasticAdapter runs the work on the network's own
// threads. The gradient can be poisoned at one entry after it is computed,
// with a finite loss. Shared by the K-FAC and Shampoo tests of the steps
// that run on the gradient's threads.
#pragma once

#include <span>
#include <vector>

#include "hesse/nn/network_objective.hpp"
#include "hesse/optim/optimizer.hpp"

namespace hesse::testing {

template <class T>
class PlainObjective final : public optim::StochasticObjective<T> {
 public:
  explicit PlainObjective(nn::NetworkObjective<T>& f) : f_(f) {}
  Index dimension() const override { return f_.dimension(); }
  Index num_samples() const override { return f_.num_samples(); }
  void select_batch(std::span<const Index> indices) override { f_.select_batch(indices); }
  void select_all() override { f_.select_all(); }
  T value_and_gradient(const Vector<T>& x, Vector<T>* g) override {
    const T loss = f_.value_and_gradient(x, g);
    if (g && poison) (*g)[poison_index] = *poison;
    return loss;
  }
  bool has_gauss_newton_vector() const override { return true; }
  void gauss_newton_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& Gv) override {
    f_.gauss_newton_vector(x, v, Gv);
  }
  nn::NetworkObjective<T>* network() override { return &f_; }
  std::vector<optim::ParameterBlock> parameter_blocks() const override {
    return f_.parameter_blocks();
  }
  /// When set, gradient entry poison_index becomes *poison.
  const T* poison = nullptr;
  Index poison_index = 3;

 private:
  nn::NetworkObjective<T>& f_;
};

}  // namespace hesse::testing
