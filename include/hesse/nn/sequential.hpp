// A feed-forward network: a chain of layers over one flat parameter vector.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "hesse/nn/layer.hpp"
#include "hesse/optim/parameter_block.hpp"

namespace hesse::nn {

template <class T>
class Sequential {
 public:
  Sequential() = default;
  /// Appends a layer; its input size must equal the current output size.
  Sequential& add(std::shared_ptr<const Layer<T>> layer);
  Sequential& dense(Index outputs);             ///< needs a previous layer or input_size
  Sequential& activation(ActivationKind kind);  ///< on the current output size

  /// An empty network whose first layer will take `inputs` features.
  explicit Sequential(Index inputs) : declared_inputs_(inputs) {}

  Index num_layers() const { return static_cast<Index>(layers_.size()); }
  const Layer<T>& layer(Index i) const { return *layers_[static_cast<std::size_t>(i)]; }
  /// Offset of layer i's slice in the flat parameter vector.
  Index parameter_offset(Index i) const { return offsets_[static_cast<std::size_t>(i)]; }
  Index num_parameters() const { return offsets_.empty() ? 0 : offsets_.back(); }
  Index input_size() const;
  Index output_size() const;

  /// A parameter vector initialised from `seed`: biases zero, weights by `init`
  /// (Auto: He normal when the next activation is ReLU-like, Xavier uniform
  /// otherwise).
  Vector<T> initial_parameters(std::uint64_t seed, Init init = Init::Auto) const;

  /// Outputs for a batch: X: [inputs, B] -> out: [outputs, B].
  void predict(const Vector<T>& params, ConstRef<T> X, Matrix<T>& out) const;

  /// Where each Dense layer's weight and bias sit in the flat parameter
  /// vector, first layer first (K-FAC's and Shampoo's per-layer blocks).
  std::vector<optim::ParameterBlock> parameter_blocks() const;

  /// One line per layer with its shape and parameter count.
  std::string summary() const;

 private:
  std::vector<std::shared_ptr<const Layer<T>>> layers_;
  std::vector<Index> offsets_{0};  // offsets_[i] = start of layer i; back() = total
  Index declared_inputs_ = 0;
};

/// A multi-layer perceptron: Dense layers of the given sizes (first = inputs,
/// last = outputs) with `hidden` after every Dense layer but the last.
template <class T>
Sequential<T> make_mlp(std::span<const Index> sizes, ActivationKind hidden);

/// Parses "784-128-64-10" (or "mlp:784-128-64-10") into layer sizes; throws
/// InvalidArgument naming the bad part.
std::vector<Index> parse_layer_sizes(const std::string& spec);

extern template class Sequential<float>;
extern template class Sequential<double>;

}  // namespace hesse::nn
