// weft: the command-line tool for weft clusters. Each subcommand lives in its own files
// (subcommand.h says how to add one); this file only assembles them and maps the outcome to
// an exit code.

#include <cstdio>
#include <string>

#include "tools/weft/subcommand.h"
#include <CLI/CLI.hpp>

namespace {

// Every subcommand of `weft`, in the order `weft --help` lists them. `demo` (demo.h) is added
// here by the replication work.
constexpr weft::tools::AddSubcommandFunction kSubcommands[] = {
    weft::tools::AddStatusCommand,
    weft::tools::AddLoadCommand,
    weft::tools::AddDemoCommand,
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("weft: inspect, load and demonstrate weft clusters", "weft");
  app.require_subcommand(1);
  std::vector<weft::tools::Subcommand> subcommands;
  for (weft::tools::AddSubcommandFunction add : kSubcommands)
    subcommands.push_back(add(app));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // CLI11 prints help (exit 0) and usage errors itself; usage errors exit with 2.
    const int code = app.exit(error);
    return code == 0 ? weft::tools::kExitOk : weft::tools::kExitUsage;
  }
  for (const weft::tools::Subcommand& subcommand : subcommands) {
    if (subcommand.app->parsed())
      return subcommand.run();
  }
  return weft::tools::kExitUsage;
}
