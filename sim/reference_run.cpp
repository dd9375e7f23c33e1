#include "sim/reference_run.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "sim/run.hpp"

namespace lpt {

ReferenceTiming reference_timing(const core::RunStats& stats) {
  ReferenceTiming t;
  t.total_cycles = stats.total_cycles;
  for (const core::StepStats& step : stats.steps) {
    if (!step.collective) continue;
    t.communication_cycles += step.collective->end_cycle - step.collective->start_cycle;
    t.bytes_sent += step.collective->bytes_sent;
    const core::Counters& c = step.collective->counters;
    t.collective_dram_bytes += c[core::Counter::kDramReadBytes] + c[core::Counter::kDramWriteBytes];
    t.collective_sfu_ops += c[core::Counter::kSfuAluOps];
  }
  return t;
}

namespace {

void write_all(int fd, const std::string& text) {
  for (std::size_t done = 0; done < text.size();) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

ReferenceRun::ReferenceRun(const AcceleratorConfig& config, const Trace& trace, const SimulationOptions& options) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("cannot start a reference run (pipe failed)");
  std::cout.flush();
  std::cerr.flush();
  pid_ = fork();
  if (pid_ < 0) {
    close(fds[0]);
    close(fds[1]);
    throw std::runtime_error("cannot start a reference run (fork failed)");
  }
  if (pid_ == 0) {  // the child: one simulation, its figures down the pipe, out
    close(fds[0]);
    nlohmann::json out;
    int status = 0;
    try {
      SimulationOptions child = options;
      child.fidelity = false;
      child.reference_runs = false;
      child.check_memory = false;
      std::ostringstream progress;
      const TimedRun timed = simulate_timing(config, trace, child, progress);
      ReferenceTiming t = reference_timing(timed.stats);
      t.energy_pj = report_run(timed, timed.config.chip, progress).total.energy.total_pj();
      out = {{"total_cycles", t.total_cycles},
             {"energy_pj", t.energy_pj},
             {"communication_cycles", t.communication_cycles},
             {"bytes_sent", t.bytes_sent},
             {"collective_dram_bytes", t.collective_dram_bytes},
             {"collective_sfu_ops", t.collective_sfu_ops}};
    } catch (const std::exception& e) {
      out = {{"error", e.what()}};
      status = 1;
    }
    write_all(fds[1], out.dump());
    close(fds[1]);
    _exit(status);
  }
  close(fds[1]);
  from_child_ = fds[0];
}

ReferenceRun::~ReferenceRun() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
  close(from_child_);
}

ReferenceTiming ReferenceRun::result() {
  std::string text;
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(from_child_, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  close(from_child_);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  const nlohmann::json out = nlohmann::json::parse(text, nullptr, false);
  if (out.is_object() && out.contains("error"))
    throw std::runtime_error("reference run: " + out["error"].get<std::string>());
  if (!out.is_object() || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("reference run: the child process ended without a result");
  ReferenceTiming t;
  t.total_cycles = out.value("total_cycles", std::uint64_t{0});
  t.communication_cycles = out.value("communication_cycles", std::uint64_t{0});
  t.bytes_sent = out.value("bytes_sent", std::uint64_t{0});
  t.collective_dram_bytes = out.value("collective_dram_bytes", std::uint64_t{0});
  t.collective_sfu_ops = out.value("collective_sfu_ops", std::uint64_t{0});
  t.energy_pj = out.value("energy_pj", 0.0);
  return t;
}

}  // namespace lpt
