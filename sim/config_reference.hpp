// The config reference (docs/config-reference.md), rendered from the same
// declarations that read the files: `lptsim config-reference` prints it.
#pragma once

#include <string>

namespace lpt {

std::string config_reference_markdown();

}  // namespace lpt
