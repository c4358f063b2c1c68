// make_optimizer: every mini-batch optimizer by name, for fit(), the CLI and
// `hesse compare`. Each family's header provides a factory that returns null
// for names it does not know.
#include <algorithm>

#include "hesse/optim/first_order.hpp"
#include "hesse/optim/full_batch_lbfgs.hpp"
#include "hesse/optim/hessian_free.hpp"
#include "hesse/optim/kfac.hpp"
#include "hesse/optim/optimizer.hpp"
#include "hesse/optim/shampoo.hpp"

namespace hesse::optim {

std::vector<std::pair<std::string, std::string>> optimizer_catalogue() {
  return {
      {"sgd", "stochastic gradient descent (torch.optim.SGD): momentum, dampening, nesterov"},
      {"sgd-momentum", "sgd with momentum 0.9 (alias: momentum)"},
      {"nesterov", "sgd with Nesterov momentum 0.9"},
      {"adagrad", "AdaGrad (Duchi et al. 2011; torch.optim.Adagrad)"},
      {"rmsprop", "RMSprop (Tieleman & Hinton 2012; torch.optim.RMSprop)"},
      {"adam", "Adam (Kingma & Ba 2015; torch.optim.Adam)"},
      {"adamw", "AdamW, decoupled weight decay (Loshchilov & Hutter 2019)"},
      {"hessian-free", "Hessian-free: Gauss-Newton CG with damping (Martens 2010)"},
      {"subsampled-newton", "subsampled Newton-CG (Byrd et al. 2011; Roosta-Khorasani & Mahoney 2016)"},
      {"slbfgs", "stochastic L-BFGS: curvature pairs on the batch or its first part (oLBFGS; Berahas et al. 2016)"},
      {"kfac", "K-FAC: Kronecker-factored Fisher (Martens & Grosse 2015)"},
      {"shampoo", "Shampoo with grafting (Gupta et al. 2018; Anil et al. 2020)"},
      {"adahessian", "AdaHessian: Hutchinson Hessian diagonal (Yao et al. 2021)"},
      {"sophia", "Sophia: clipped diagonal Newton (Liu et al. 2023)"},
      {"lbfgs", "full-batch L-BFGS, one iteration per step (strong-Wolfe line search)"},
  };
}

template <class T>
std::unique_ptr<Optimizer<T>> make_optimizer(const std::string& name,
                                             const OptimizerSettings& settings) {
  // Aliases with the comparison's usual momentum; explicit settings win.
  if (name == "sgd-momentum" || name == "momentum" || name == "nesterov") {
    OptimizerSettings s = settings;
    s.emplace("momentum", 0.9);
    if (name == "nesterov") s.emplace("nesterov", 1);
    auto opt = make_first_order<T>("sgd", s);
    return opt;
  }
  if (name == "lbfgs")
    return std::make_unique<FullBatchLbfgs<T>>(FullBatchLbfgsOptions::from_settings(settings));
  if (name == "kfac") return make_kfac<T>(settings);
  if (auto opt = make_first_order<T>(name, settings)) return opt;
  if (auto opt = make_hessian_free_family<T>(name, settings)) return opt;
  if (auto opt = make_preconditioned<T>(name, settings)) return opt;
  std::string known;
  for (const auto& [n, description] : optimizer_catalogue()) known += (known.empty() ? "" : ", ") + n;
  throw InvalidArgument("unknown optimizer '" + name + "' (known: " + known + ")");
}

template std::unique_ptr<Optimizer<float>> make_optimizer<float>(const std::string&,
                                                                 const OptimizerSettings&);
template std::unique_ptr<Optimizer<double>> make_optimizer<double>(const std::string&,
                                                                   const OptimizerSettings&);

}  // namespace hesse::optim
