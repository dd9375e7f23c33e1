#include "sim/cli_options.hpp"

namespace lpt {

namespace po = boost::program_options;

std::optional<int> parse_command_line(const std::string& command, const std::string& usage,
                                      const po::options_description& options,
                                      const po::positional_options_description* positional,
                                      const std::vector<std::string>& args, po::variables_map& vm,
                                      std::ostream& out, std::ostream& err) {
  po::options_description output("output");
  output.add_options()("quiet,q", "print only the command's product and errors: no summary, no progress")(
      "verbose,v", "print progress in detail");
  po::options_description all;
  all.add(options).add(output);
  try {
    po::command_line_parser parser(args);
    parser.options(all);
    if (positional) parser.positional(*positional);
    po::store(parser.run(), vm);
    if (vm.count("help")) {
      out << usage << "\n\n" << all << '\n';
      return kExitOk;
    }
    if (vm.count("quiet") && vm.count("verbose")) throw po::error("--quiet and --verbose exclude each other");
    po::notify(vm);
  } catch (const po::error& e) {
    err << "lptsim " << command << ": " << e.what() << "\n" << usage << "\n(see --help)\n";
    return kExitBadInput;
  }
  return std::nullopt;
}

Verbosity verbosity(const po::variables_map& vm) {
  if (vm.count("quiet")) return Verbosity::kQuiet;
  return vm.count("verbose") ? Verbosity::kVerbose : Verbosity::kNormal;
}

std::ostream& stream_for(Verbosity level, Verbosity needed, std::ostream& stream) {
  // A stream without a buffer fails every write, silently.
  static std::ostream discard(nullptr);
  return level >= needed ? stream : discard;
}

}  // namespace lpt
