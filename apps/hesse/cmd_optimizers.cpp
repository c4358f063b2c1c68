// hesse optimizers: the mini-batch optimizers `compare` and fit() know.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "hesse/optim/optimizer.hpp"

namespace hesse::cli {

void add_optimizers_command(CLI::App& app) {
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand("optimizers", "List the mini-batch optimizers by name");
  cmd->add_flag("--json", *json, "Print the list as JSON");
  cmd->callback([json] {
    const auto catalogue = optim::optimizer_catalogue();
    if (*json) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& [name, description] : catalogue)
        out.push_back({{"name", name}, {"description", description}});
      std::cout << out.dump(2) << "\n";
      return;
    }
    for (const auto& [name, description] : catalogue)
      std::printf("%-18s %s\n", name.c_str(), description.c_str());
  });
}

}  // namespace hesse::cli
