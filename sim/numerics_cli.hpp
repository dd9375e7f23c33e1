// `lptsim numerics SUBCOMMAND ...`: the numerics library from the command line.
//
//   formats   list every preset format with its parameters and range
//   convert   round values (or re-encode bit patterns) into a format, one per stdin line
//
// Each subcommand is one entry of a table (name, one-line help, function) in
// numerics_cli.cpp; add a subcommand by adding a row.
#pragma once

#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace lpt {

// `args` are the words after `lptsim numerics`. Returns 0 on success, 2 on bad usage or
// bad input (with a message on `err`).
int run_numerics_command(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
                         std::ostream& err);

using NumericsCommand = int (*)(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
                                std::ostream& err);

struct NumericsSubcommand {
  std::string_view name;
  std::string_view help;  // one line
  NumericsCommand run;    // gets the words after the subcommand name
};

// The dispatch table, in help order.
const std::vector<NumericsSubcommand>& numerics_subcommands();

int run_numerics_formats(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
                         std::ostream& err);
int run_numerics_convert(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
                         std::ostream& err);

}  // namespace lpt
