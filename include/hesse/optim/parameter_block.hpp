// Where a matrix-shaped group of parameters sits in a flat parameter vector.
#pragma once

#include "hesse/core/types.hpp"

namespace hesse::optim {

/// One Dense layer's parameters in the flat vector: the weight W: [rows, cols]
/// column-major at `weight_offset`, then the bias b: [rows] at `bias_offset`
/// (-1: no bias).
struct ParameterBlock {
  Index layer = 0;  ///< index of the layer in its network
  Index weight_offset = 0;
  Index rows = 0;
  Index cols = 0;
  Index bias_offset = -1;
};

}  // namespace hesse::optim
