#include "sim/cli_options.hpp"

namespace lpt {

namespace po = boost::program_options;

std::optional<int> parse_command_line(const std::string& command, const std::string& usage,
                                      const po::options_description& options,
                                      const po::positional_options_description* positional,
                                      const std::vector<std::string>& args, po::variables_map& vm,
                                      std::ostream& out, std::ostream& err) {
  try {
    po::command_line_parser parser(args);
    parser.options(options);
    if (positional) parser.positional(*positional);
    po::store(parser.run(), vm);
    if (vm.count("help")) {
      out << usage << "\n\n" << options << '\n';
      return kExitOk;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    err << "lptsim " << command << ": " << e.what() << "\n" << usage << "\n(see --help)\n";
    return kExitBadInput;
  }
  return std::nullopt;
}

}  // namespace lpt
