#include "commands.hpp"

namespace hesse::cli {

void add_datasets_command(CLI::App& app) {
  app.add_subcommand("datasets", "List the built-in data sets with shapes, splits and sources");
}

}  // namespace hesse::cli
