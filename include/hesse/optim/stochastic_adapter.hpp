// StochasticAdapter: any batch objective (hesse/objective/concepts.hpp) as
// the virtual StochasticObjective that mini-batch optimizers take. The
// products the type has are forwarded; the others throw when called.
#pragma once

#include <string>
#include <type_traits>
#include <vector>

#include "hesse/objective/concepts.hpp"
#include "hesse/optim/optimizer.hpp"

namespace hesse::nn {
template <class T>
class NetworkObjective;
}

namespace hesse::optim {

template <class F>
class StochasticAdapter final : public StochasticObjective<typename F::Scalar> {
  HESSE_REQUIRE_OBJECTIVE(F, BatchObjective, "num_samples() and select_batch(indices)");
  HESSE_REQUIRE_OBJECTIVE(F, DifferentiableObjective, "value_and_gradient(x, gradient)");

 public:
  using T = typename F::Scalar;
  explicit StochasticAdapter(F& f) : f_(f) {}

  Index dimension() const override { return f_.dimension(); }
  Index num_samples() const override { return f_.num_samples(); }
  void select_batch(std::span<const Index> indices) override { f_.select_batch(indices); }
  void select_all() override { f_.select_all(); }
  T value_and_gradient(const Vector<T>& x, Vector<T>* gradient) override {
    return f_.value_and_gradient(x, gradient);
  }
  // Forwarded when F keeps its own threads for the work (a network).
  T value_and_gradient_then(const Vector<T>& x, Vector<T>& gradient,
                            const typename StochasticObjective<T>::AfterGradient& then) override {
    if constexpr (requires(F& g) { g.value_and_gradient_then(x, gradient, then); }) {
      return f_.value_and_gradient_then(x, gradient, then);
    } else {
      return StochasticObjective<T>::value_and_gradient_then(x, gradient, then);
    }
  }
  bool has_hessian_vector() const override { return HessianVectorObjective<F>; }
  void hessian_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& Hv) override {
    if constexpr (HessianVectorObjective<F>) {
      f_.hessian_vector(x, v, Hv);
    } else {
      StochasticObjective<T>::hessian_vector(x, v, Hv);
    }
  }
  bool has_gauss_newton_vector() const override { return GaussNewtonObjective<F>; }
  void gauss_newton_vector(const Vector<T>& x, const Vector<T>& v, Vector<T>& Gv) override {
    if constexpr (GaussNewtonObjective<F>) {
      f_.gauss_newton_vector(x, v, Gv);
    } else {
      StochasticObjective<T>::gauss_newton_vector(x, v, Gv);
    }
  }
  // Forwarded when F has squared_gradient_sum(x, out, gradient); F may
  // narrow it with has_squared_gradient_sum() (a network whose layers the
  // one-pass rule does not cover).
  bool has_squared_gradient_sum() const override {
    if constexpr (requires(F& g, const Vector<T>& x, Vector<T>& out) {
                    g.squared_gradient_sum(x, out, &out);
                  }) {
      if constexpr (requires(const F& cf) { bool(cf.has_squared_gradient_sum()); })
        return f_.has_squared_gradient_sum();
      else
        return true;
    } else {
      return false;
    }
  }
  T squared_gradient_sum(const Vector<T>& x, Vector<T>& out, Vector<T>* gradient) override {
    if constexpr (requires(F& g) { g.squared_gradient_sum(x, out, gradient); }) {
      return f_.squared_gradient_sum(x, out, gradient);
    } else {
      return StochasticObjective<T>::squared_gradient_sum(x, out, gradient);
    }
  }
  nn::NetworkObjective<T>* network() override {
    if constexpr (std::is_same_v<F, nn::NetworkObjective<T>>) {
      return &f_;
    } else {
      return nullptr;
    }
  }
  std::vector<ParameterBlock> parameter_blocks() const override {
    if constexpr (requires(const F& cf) { cf.parameter_blocks(); }) {
      return f_.parameter_blocks();
    } else {
      return {};
    }
  }

  F& objective() { return f_; }

 private:
  F& f_;
};

}  // namespace hesse::optim
