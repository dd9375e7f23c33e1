// `lptsim numerics convert`: the first line is the --to format (a preset name
// or a JSON descriptor), the rest is standard input. Bad input must give exit
// code 2 with a message; exit 1 (an internal failure) is a finding.
#include <cstdlib>
#include <sstream>

#include "sim/numerics_cli.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = lpt::fuzz::as_text(data, size);
  const std::size_t newline = text.find('\n');
  const std::string format(text.substr(0, newline));
  std::istringstream in(newline == std::string_view::npos ? std::string() : std::string(text.substr(newline + 1)));
  std::ostringstream out, err;
  const int status = lpt::run_numerics_command({"convert", "--to", format}, in, out, err);
  if (status != 0 && status != 2) std::abort();
  if (status == 2 && err.str().empty()) std::abort();
  return 0;
}
