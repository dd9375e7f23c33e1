#include "sim/sweep.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "models/common/input_file.hpp"
#include "sim/config.hpp"
#include "sim/trace.hpp"

namespace lpt {

namespace {

// FNV-1a, 64 bits: a stable digest of the text (std::hash is not stable
// across builds).
std::string digest(const std::string& text) {
  std::uint64_t h = 14695981039346656037ull;
  for (const unsigned char c : text) h = (h ^ c) * 1099511628211ull;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

std::string options_text(const SimulationOptions& o) {
  std::string text = o.mode == RunMode::kInference ? "inference" : "training";
  for (const Phase p : o.phases) text += std::string(",") + to_string(p);
  if (o.batch) text += ",batch=" + std::to_string(*o.batch);
  if (o.fusion) text += std::string(",fusion=") + to_string(*o.fusion);
  if (o.residency) text += std::string(",residency=") + to_string(*o.residency);
  return text;
}

struct Job {
  std::string key;
  std::size_t trace = 0;
  std::vector<Setting> settings;
  AcceleratorConfig config;
};

nlohmann::json settings_json(const std::vector<Setting>& settings) {
  nlohmann::json out = nlohmann::json::object();
  for (const Setting& s : settings) out[s.pointer] = s.value;
  return out;
}

// What a worker computes: the metrics, or the error that stopped it.
nlohmann::json run_point(const Job& job, const Trace& trace, const SweepSpec& spec) {
  try {
    std::ostringstream quiet;
    const nlohmann::json report = to_json(simulate(job.config, trace, spec.options, quiet));
    nlohmann::json metrics = nlohmann::json::object();
    for (const std::string& pointer : spec.metrics) {
      const nlohmann::json::json_pointer p(pointer);
      metrics[pointer] = report.contains(p) ? report.at(p) : nlohmann::json();
    }
    return {{"status", "ok"}, {"metrics", metrics}};
  } catch (const std::exception& e) {
    return {{"status", "error"}, {"error", e.what()}};
  }
}

class ResultsFile {
 public:
  ResultsFile(const std::filesystem::path& file, bool resume) : file_(file) {
    if (std::filesystem::exists(file) && std::filesystem::file_size(file) > 0) {
      if (!resume)
        throw InputError(file.string(), "", "a sweep's results are already here: add --resume to go on with it, "
                                            "or give another --out");
      std::ifstream in(file);
      for (std::string line; std::getline(in, line);) {
        // A line cut short by a kill is not a result: its point runs again.
        const nlohmann::json record = nlohmann::json::parse(line, nullptr, false);
        if (record.is_object() && record.contains("key") && record["key"].is_string())
          done_.insert(record["key"].get<std::string>());
      }
    }
    // A line cut short by a kill must not swallow the next result.
    bool ends_line = true;
    if (std::ifstream tail(file, std::ios::binary | std::ios::ate); tail && tail.tellg() > 0) {
      tail.seekg(-1, std::ios::end);
      ends_line = tail.get() == '\n';
    }
    out_.open(file, std::ios::app);
    if (!out_) throw InputError(file.string(), "", "cannot write the results file");
    if (!ends_line) out_ << '\n';
  }

  bool done(const std::string& key) const { return done_.count(key) > 0; }

  void append(const nlohmann::json& record) {
    out_ << record.dump() << '\n';
    out_.flush();
    if (!out_) throw std::runtime_error("cannot write " + file_.string());
  }

 private:
  std::filesystem::path file_;
  std::set<std::string> done_;
  std::ofstream out_;
};

class Progress {
 public:
  Progress(std::ostream& out, std::size_t total) : out_(out), total_(total), start_(clock::now()), last_(start_) {}

  void count(bool ok) {
    ++done_;
    failed_ += ok ? 0 : 1;
    const auto now = clock::now();
    if (done_ < total_ && now - last_ < std::chrono::seconds(1)) return;
    last_ = now;
    const double seconds = std::chrono::duration<double>(now - start_).count();
    const double rate = seconds > 0 ? static_cast<double>(done_) / seconds : 0;
    char line[160];
    std::snprintf(line, sizeof line, "sweep: %zu/%zu points (%zu failed), %.1f points/s, %.0f s left\n", done_,
                  total_, failed_, rate, rate > 0 ? static_cast<double>(total_ - done_) / rate : 0.0);
    out_ << line << std::flush;
  }

 private:
  using clock = std::chrono::steady_clock;
  std::ostream& out_;
  std::size_t total_, done_ = 0, failed_ = 0;
  clock::time_point start_, last_;
};

}  // namespace

std::string point_key(const nlohmann::json& config_document, const std::filesystem::path& trace,
                      const SimulationOptions& options) {
  return digest(config_document.dump() + "\n" + trace.string() + "\n" + options_text(options));
}

SweepSummary run_sweep(const SweepSpec& spec, const SweepOptions& options, std::ostream& progress) {
  prepare_output_directory(options.out_dir);
  const std::filesystem::path work = options.out_dir / ".workers";
  std::filesystem::create_directories(work);
  ResultsFile results(options.out_dir / "results.jsonl", options.resume);

  const ConfigDocument base = read_config_document(spec.config);
  std::vector<Trace> traces;
  for (const auto& file : spec.traces) traces.push_back(load_trace(file));

  SweepSummary summary;
  std::vector<Job> jobs;
  std::set<std::string> queued;
  const auto record_failure = [&](const std::string& key, std::size_t trace, const std::vector<Setting>& settings,
                                  const std::string& error) {
    results.append({{"key", key}, {"trace", spec.traces[trace].string()}, {"settings", settings_json(settings)},
                    {"status", "error"}, {"error", error}});
    ++summary.failed;
  };
  for (const auto& settings : expand_points(spec))
    for (std::size_t t = 0; t < traces.size(); ++t) {
      ++summary.points;
      ConfigDocument document = base;
      std::string error;
      try {
        for (const Setting& s : settings) apply_override(document, override_text(s));
      } catch (const InputError& e) {
        error = e.what();
      }
      const std::string key = point_key(document.json, spec.traces[t], spec.options);
      if (results.done(key) || queued.count(key)) {
        ++summary.skipped;
        continue;
      }
      if (error.empty() && !satisfies(spec.constraints, document.json)) {
        ++summary.dropped;
        continue;
      }
      queued.insert(key);
      if (!error.empty()) {
        record_failure(key, t, settings, error);
        continue;
      }
      try {
        jobs.push_back({key, t, settings, parse_config_document(document)});
      } catch (const InputError& e) {
        record_failure(key, t, settings, e.what());
      }
    }

  Progress meter(progress, jobs.size());
  std::map<pid_t, std::size_t> running;  // worker -> job
  std::size_t next = 0;
  const auto finish = [&](pid_t pid, int status) {
    const Job& job = jobs[running.at(pid)];
    running.erase(pid);
    const std::filesystem::path result_file = work / (job.key + ".json");
    nlohmann::json record = {{"key", job.key}, {"trace", spec.traces[job.trace].string()},
                             {"settings", settings_json(job.settings)}};
    std::ifstream in(result_file);
    const nlohmann::json outcome = in ? nlohmann::json::parse(in, nullptr, false) : nlohmann::json();
    if (outcome.is_object() && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      record.update(outcome);
    } else {
      record["status"] = "crashed";
      record["error"] = WIFSIGNALED(status) ? "the worker was killed by signal " + std::to_string(WTERMSIG(status))
                                            : "the worker exited with status " + std::to_string(WEXITSTATUS(status));
    }
    std::filesystem::remove(result_file);
    const bool ok = record["status"] == "ok";
    (ok ? summary.ok : summary.failed) += 1;
    results.append(record);
    meter.count(ok);
  };
  while (next < jobs.size() || !running.empty()) {
    while (next < jobs.size() && running.size() < static_cast<std::size_t>(std::max(1, options.jobs))) {
      std::cout.flush();
      std::cerr.flush();
      progress.flush();
      const pid_t pid = fork();
      if (pid < 0) throw std::runtime_error("cannot start a sweep worker (fork failed)");
      if (pid == 0) {  // the worker: one point, one SystemC simulation, then out
        const Job& job = jobs[next];
        const nlohmann::json outcome = run_point(job, traces[job.trace], spec);
        std::ofstream out(work / (job.key + ".json"));
        out << outcome.dump();
        out.close();
        _exit(out ? 0 : 3);
      }
      running[pid] = next++;
    }
    int status = 0;
    const pid_t pid = waitpid(-1, &status, 0);
    if (pid > 0 && running.count(pid)) finish(pid, status);
  }
  std::filesystem::remove_all(work);
  return summary;
}

}  // namespace lpt
