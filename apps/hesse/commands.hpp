// Each hesse subcommand lives in its own cmd_<name>.cpp and registers itself
// on the top-level app. A command's callback throws hesse::InvalidArgument or
// hesse::DataError on bad input; main() turns that into one line on stderr and
// exit code 2.
#pragma once

#include <CLI/CLI.hpp>

namespace hesse::cli {

/// Thrown by a command whose checks ran but did not pass: exit code 1, the
/// command has already printed why.
struct CheckFailed {};

void add_datasets_command(CLI::App& app);
void add_check_command(CLI::App& app);
void add_minimize_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_compare_command(CLI::App& app);
void add_optimizers_command(CLI::App& app);

}  // namespace hesse::cli
