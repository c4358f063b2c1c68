#include "hesse/nn/sequential.hpp"

#include <charconv>
#include <sstream>

#include "hesse/core/error.hpp"

namespace hesse::nn {

template <class T>
Sequential<T>& Sequential<T>::add(std::shared_ptr<const Layer<T>> layer) {
  HESSE_REQUIRE(layer != nullptr, "Sequential::add: null layer");
  if (!layers_.empty() || declared_inputs_ > 0) {
    HESSE_REQUIRE(layer->input_size() == output_size(),
                  "Sequential::add: layer " + std::to_string(layers_.size()) + " (" +
                      layer->describe() + ") takes " + std::to_string(layer->input_size()) +
                      " inputs but the previous output has " + std::to_string(output_size()));
  }
  offsets_.push_back(offsets_.back() + layer->num_parameters());
  layers_.push_back(std::move(layer));
  return *this;
}

template <class T>
Sequential<T>& Sequential<T>::dense(Index outputs) {
  HESSE_REQUIRE(!layers_.empty() || declared_inputs_ > 0,
                "Sequential::dense: the first layer needs an input size (Sequential(inputs))");
  return add(std::make_shared<Dense<T>>(output_size(), outputs));
}

template <class T>
Sequential<T>& Sequential<T>::activation(ActivationKind kind) {
  HESSE_REQUIRE(!layers_.empty() || declared_inputs_ > 0,
                "Sequential::activation: the first layer needs an input size");
  return add(std::make_shared<Activation<T>>(kind, output_size()));
}

template <class T>
Index Sequential<T>::input_size() const {
  return layers_.empty() ? declared_inputs_ : layers_.front()->input_size();
}

template <class T>
Index Sequential<T>::output_size() const {
  return layers_.empty() ? declared_inputs_ : layers_.back()->output_size();
}

template <class T>
Vector<T> Sequential<T>::initial_parameters(std::uint64_t seed, Init init) const {
  Vector<T> params = Vector<T>::Zero(num_parameters());
  Rng rng(seed);
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    Init layer_init = init;
    if (init == Init::Auto) {
      layer_init = Init::XavierUniform;
      if (i + 1 < layers_.size()) {
        if (const auto* next = dynamic_cast<const Activation<T>*>(layers_[i + 1].get())) {
          const ActivationKind kind = next->kind();
          if (kind == ActivationKind::ReLU || kind == ActivationKind::LeakyReLU ||
              kind == ActivationKind::GELU)
            layer_init = Init::HeNormal;
        }
      }
    }
    layers_[i]->initialize(params.data() + offsets_[i], layer_init, rng);
  }
  return params;
}

template <class T>
void Sequential<T>::predict(const Vector<T>& params, ConstRef<T> X, Matrix<T>& out) const {
  HESSE_REQUIRE(params.size() == num_parameters(),
                "Sequential::predict: " + std::to_string(params.size()) +
                    " parameters given, the network has " + std::to_string(num_parameters()));
  HESSE_REQUIRE(X.rows() == input_size(), "Sequential::predict: inputs have " +
                                              std::to_string(X.rows()) + " rows, the network takes " +
                                              std::to_string(input_size()));
  if (layers_.empty()) {
    out = X;
    return;
  }
  Matrix<T> buffers[2];
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    Matrix<T>& y = i + 1 == layers_.size() ? out : buffers[i % 2];
    if (i == 0)
      layers_[i]->forward(params.data() + offsets_[i], X, y);
    else
      layers_[i]->forward(params.data() + offsets_[i], buffers[(i - 1) % 2], y);
  }
}

template <class T>
std::vector<optim::ParameterBlock> Sequential<T>::parameter_blocks() const {
  std::vector<optim::ParameterBlock> blocks;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    if (dynamic_cast<const Dense<T>*>(layers_[i].get()) == nullptr) continue;
    const Index rows = layers_[i]->output_size(), cols = layers_[i]->input_size();
    blocks.push_back({.layer = Index(i),
                      .weight_offset = offsets_[i],
                      .rows = rows,
                      .cols = cols,
                      .bias_offset = offsets_[i] + rows * cols});
  }
  return blocks;
}

template <class T>
std::string Sequential<T>::summary() const {
  std::ostringstream out;
  for (std::size_t i = 0; i < layers_.size(); ++i)
    out << "  " << i << "  " << layers_[i]->describe() << "  params " << layers_[i]->num_parameters()
        << "\n";
  out << "  total parameters " << num_parameters() << "\n";
  return out.str();
}

template <class T>
Sequential<T> make_mlp(std::span<const Index> sizes, ActivationKind hidden) {
  HESSE_REQUIRE(sizes.size() >= 2, "an MLP needs at least an input and an output size");
  Sequential<T> net(sizes[0]);
  for (std::size_t i = 1; i < sizes.size(); ++i) {
    net.dense(sizes[i]);
    if (i + 1 < sizes.size()) net.activation(hidden);
  }
  return net;
}

std::vector<Index> parse_layer_sizes(const std::string& spec) {
  std::string body = spec;
  if (body.rfind("mlp:", 0) == 0) body = body.substr(4);
  std::vector<Index> sizes;
  std::size_t start = 0;
  while (start <= body.size()) {
    const std::size_t end = std::min(body.find('-', start), body.size());
    const std::string part = body.substr(start, end - start);
    long long value = 0;
    const auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
    HESSE_REQUIRE(ec == std::errc() && ptr == part.data() + part.size() && value > 0,
                  "bad layer size '" + part + "' in '" + spec +
                      "' (expected positive integers joined by '-', e.g. 784-128-64-10)");
    sizes.push_back(static_cast<Index>(value));
    start = end + 1;
  }
  HESSE_REQUIRE(sizes.size() >= 2, "network spec '" + spec + "' needs at least two sizes");
  return sizes;
}

template class Sequential<float>;
template class Sequential<double>;
template Sequential<float> make_mlp<float>(std::span<const Index>, ActivationKind);
template Sequential<double> make_mlp<double>(std::span<const Index>, ActivationKind);

}  // namespace hesse::nn
