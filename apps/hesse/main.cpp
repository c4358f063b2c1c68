// hesse command-line tool: a thin shell over the library.
#include <CLI/CLI.hpp>
#include <exception>
#include <iostream>

#include "commands.hpp"
#include "hesse/core/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{"hesse: second-order optimization for machine learning"};
  app.set_version_flag("--version", std::string("hesse ") + HESSE_VERSION);
  app.require_subcommand(1);
  app.fallthrough();
  hesse::cli::add_datasets_command(app);
  hesse::cli::add_check_command(app);
  hesse::cli::add_minimize_command(app);
  hesse::cli::add_train_command(app);
  hesse::cli::add_compare_command(app);
  hesse::cli::add_optimizers_command(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);  // prints the message and usage
    return 2;
  } catch (const hesse::InvalidArgument& e) {
    std::cerr << "hesse: error: " << e.what() << "\n";
    return 2;
  } catch (const hesse::DataError& e) {
    std::cerr << "hesse: error: " << e.what() << "\n";
    return 2;
  } catch (const hesse::cli::CheckFailed&) {
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "hesse: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
