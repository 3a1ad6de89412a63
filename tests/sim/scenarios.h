// Scenarios: scripted runs of the simulator that force one interleaving each, for the bugs
// that random seeds rarely reach (tests/sim/breaks.txt pairs each with the break that reverts
// its fix). They use the same members, network, registry and oracles as seeded runs; only the
// workload and faults are scripted.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tests/sim/simulation.h"

namespace weft::sim {

std::vector<std::string> ScenarioNames();
// Runs scenario `name`; nullopt if there is none.
std::optional<SimResult> RunScenario(const std::string& name,
                                     const replication::ProtocolBreaks& breaks, bool verbose);

}  // namespace weft::sim
