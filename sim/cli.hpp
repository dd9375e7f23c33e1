// The lptsim command line: `lptsim COMMAND [options]`.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace lpt {

// Runs one command line (without the program name). Returns the exit code:
// 0 success, 1 a failed simulation, 2 bad usage or bad input.
int run_cli(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
            std::ostream& err);

}  // namespace lpt
