// Command-line option parsing shared by every lptsim command (Boost.Program_options).
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

namespace lpt {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitBadInput = 2;

// How much a command tells on the terminal beside its product (the files it
// writes, or the values it prints when printing is its job) and its errors,
// which every level shows: --quiet nothing else, the default its summary and
// a line or two of progress, --verbose progress in detail.
enum class Verbosity { kQuiet, kNormal, kVerbose };

// Parses `args` (the words after the command) into `vm`, adding --quiet and
// --verbose to every command's options (read them with verbosity()). On --help
// prints the usage and options to `out` and returns kExitOk; on a usage error
// prints it to `err` and returns kExitBadInput; returns nullopt when the
// command should run.
std::optional<int> parse_command_line(
    const std::string& command, const std::string& usage,
    const boost::program_options::options_description& options,
    const boost::program_options::positional_options_description* positional,
    const std::vector<std::string>& args, boost::program_options::variables_map& vm,
    std::ostream& out, std::ostream& err);

Verbosity verbosity(const boost::program_options::variables_map& vm);

// `stream` where `level` reaches at least `needed`, else a stream that drops
// everything.
std::ostream& stream_for(Verbosity level, Verbosity needed, std::ostream& stream);

}  // namespace lpt
