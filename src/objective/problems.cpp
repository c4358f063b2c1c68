#include "hesse/objective/problems.hpp"

namespace hesse::problems {

template class Quadratic<float>;
template class Quadratic<double>;
template class OneDimensionalSquare<float>;
template class OneDimensionalSquare<double>;
template class Rosenbrock<float>;
template class Rosenbrock<double>;
template class PowellSingular<float>;
template class PowellSingular<double>;
template class Wood<float>;
template class Wood<double>;
template class Beale<float>;
template class Beale<double>;
template class BrownBadlyScaled<float>;
template class BrownBadlyScaled<double>;
template class StrictSaddle<float>;
template class StrictSaddle<double>;

}  // namespace hesse::problems
