// How the `weft` binary is put together: each subcommand lives in its own files and exposes one
// Add function; weft_main.cc lists them in a table. To add a subcommand (e.g. `demo`, in
// demo.h/demo.cc): declare `Subcommand AddDemoCommand(CLI::App& parent);`, define it (create
// the CLI11 subcommand with parent.add_subcommand, bind its options, return the action), add
// the sources to WEFT_CLI_COMMAND_SRCS in CMakeLists.txt, and add the function to kSubcommands
// in weft_main.cc.
//
// Thread safety: the Add functions run on the main thread before parsing; the action runs
// once, on the main thread, after a successful parse.
#pragma once

#include <functional>

namespace CLI {
class App;
}  // namespace CLI

namespace weft::tools {

// Process exit codes shared by the subcommands.
inline constexpr int kExitOk = 0;
// The operation failed: unreachable member, failed join, mismatched verification, timeout.
inline constexpr int kExitFailure = 1;
// Bad command line (CLI11 reports its own parse errors with this code too).
inline constexpr int kExitUsage = 2;

struct Subcommand {
  // Owned by the parent App.
  CLI::App* app = nullptr;
  // Runs the subcommand after parsing; returns the exit code. It may capture state that the
  // Add function allocated (shared_ptr: CLI11 callbacks and this action share the options).
  std::function<int()> run;
};

using AddSubcommandFunction = Subcommand (*)(CLI::App& parent);

// `weft status`: status_command.cc.
Subcommand AddStatusCommand(CLI::App& parent);
// `weft load`: load_command.cc.
Subcommand AddLoadCommand(CLI::App& parent);
// `weft demo`: demo_command.cc (the main job; members in this process: demo_cluster.h).
Subcommand AddDemoCommand(CLI::App& parent);

// Ctrl-C handling for long-running subcommands: after InstallInterruptHandler(), SIGINT and
// SIGTERM set a flag (polled with Interrupted()) instead of killing the process, so the
// subcommand can stop its work and print what it has. A second signal kills as usual.
void InstallInterruptHandler();
bool Interrupted();

}  // namespace weft::tools
