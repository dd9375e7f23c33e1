// The lptsim executable. SystemC prints a banner while its kernel starts,
// before sc_main runs, unless the environment says otherwise: so main()
// sets that first and then hands over to the kernel, which calls sc_main.
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <systemc>

#include "sim/cli.hpp"

int sc_main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return lpt::run_cli(args, std::cin, std::cout, std::cerr);
}

int main(int argc, char** argv) {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  return sc_core::sc_elab_and_sim(argc, argv);
}
