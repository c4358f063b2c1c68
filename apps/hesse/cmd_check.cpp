#include "commands.hpp"

namespace hesse::cli {

void add_check_command(CLI::App& app) {
  app.add_subcommand("check", "Check a model's derivatives against finite differences");
}

}  // namespace hesse::cli
