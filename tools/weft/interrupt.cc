// The one piece of process-global state in the CLI: a signal handler can reach nothing else.

#include <signal.h>

#include <atomic>

#include "tools/weft/subcommand.h"

namespace weft::tools {
namespace {

// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): written by a handler.
std::atomic<bool> interrupted{false};

void OnSignal(int signal_number) {
  interrupted.store(true);
  // Restore the default so that a second Ctrl-C ends a tool that does not respond.
  signal(signal_number, SIG_DFL);
}

}  // namespace

void InstallInterruptHandler() {
  struct sigaction action = {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

bool Interrupted() {
  return interrupted.load();
}

}  // namespace weft::tools
