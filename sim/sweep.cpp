#include "sim/sweep.hpp"

#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/mpi/collectives/broadcast.hpp>
#include <boost/mpi/communicator.hpp>
#include <boost/mpi/environment.hpp>
#include <boost/serialization/string.hpp>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "models/common/input_file.hpp"
#include "sim/cli_options.hpp"
#include "sim/config.hpp"
#include "sim/trace.hpp"

namespace lpt {

namespace mpi = boost::mpi;

namespace {

std::string options_text(const SimulationOptions& o) {
  std::string text = o.mode == RunMode::kInference ? "inference" : "training";
  for (const Phase p : o.phases) text += std::string(",") + to_string(p);
  if (o.batch) text += ",batch=" + std::to_string(*o.batch);
  if (o.fusion) text += std::string(",fusion=") + to_string(*o.fusion);
  if (o.residency) text += std::string(",residency=") + to_string(*o.residency);
  return text;
}

// A point: its settings, applied in order to the base config.
struct Point {
  std::string key;
  std::vector<Setting> settings;
};

// Points on one trace that differ only in the energy model (the chip's voltage
// and energy table), so that one timing simulation serves them all
// (simulate_timing, report_run); most jobs are a single point.
struct Job {
  std::size_t trace = 0;
  std::vector<Point> points;
};

// At most this many points share a job: a long voltage axis must still
// spread over the workers.
constexpr std::size_t kMaxPointsPerJob = 16;

// A job as it travels from rank 0 to another rank.
std::string job_message(const Job& job) {
  nlohmann::json points = nlohmann::json::array();
  for (const Point& point : job.points) {
    nlohmann::json settings = nlohmann::json::array();
    for (const Setting& s : point.settings) settings.push_back({s.pointer, s.value});
    points.push_back({{"key", point.key}, {"settings", settings}});
  }
  return nlohmann::json{{"trace", job.trace}, {"points", points}}.dump();
}

Job job_from_message(const std::string& message) {
  const nlohmann::json in = nlohmann::json::parse(message);
  Job job{in.at("trace").get<std::size_t>(), {}};
  for (const nlohmann::json& point : in.at("points")) {
    job.points.push_back({point.at("key").get<std::string>(), {}});
    for (const nlohmann::json& s : point.at("settings"))
      job.points.back().settings.push_back({s.at(0).get<std::string>(), s.at(1)});
  }
  return job;
}

// What the timing of a point depends on: its config without the energy model.
std::string timing_text(nlohmann::json config_document) {
  if (config_document.contains("chip") && config_document["chip"].is_object()) {
    config_document["chip"].erase("voltage");
    config_document["chip"].erase("energy");
  }
  return config_document.dump();
}

nlohmann::json settings_json(const std::vector<Setting>& settings) {
  nlohmann::json out = nlohmann::json::object();
  for (const Setting& s : settings) out[s.pointer] = s.value;
  return out;
}

// What every process that runs points reads: the spec, its base config and traces.
struct SweepInputs {
  SweepSpec spec;
  ConfigDocument base;
  std::vector<Trace> traces;

  explicit SweepInputs(const std::filesystem::path& spec_file)
      : spec(load_sweep_spec(spec_file)), base(read_config_document(spec.config)) {
    for (const auto& file : spec.traces) traces.push_back(load_trace(file));
  }

  // What a results line says of a point before its outcome.
  nlohmann::json record_of(std::size_t trace, const Point& point) const {
    return {{"key", point.key}, {"trace", spec.traces[trace].string()}, {"settings", settings_json(point.settings)}};
  }
};

nlohmann::json error_outcome(const std::exception& e) { return {{"status", "error"}, {"error", e.what()}}; }

// What a worker computes, per point of the job in order: the metrics, or the
// error that stopped it. The first point whose config is valid is simulated;
// the others take its timing and price it with their own energy model, and
// say whose timing they took ("timing_of").
nlohmann::json run_job(const Job& job, const SweepInputs& inputs) {
  std::vector<nlohmann::json> outcomes(job.points.size());
  std::vector<std::optional<AcceleratorConfig>> configs(job.points.size());
  for (std::size_t i = 0; i < job.points.size(); ++i) {
    try {
      ConfigDocument document = inputs.base;
      for (const Setting& s : job.points[i].settings) apply_override(document, override_text(s));
      configs[i] = parse_config_document(document);
    } catch (const std::exception& e) {
      outcomes[i] = error_outcome(e);
    }
  }
  std::optional<TimedRun> timed;
  std::optional<std::size_t> timed_by;
  nlohmann::json timing_error;  // the simulation's, every sharing point's
  std::ostringstream quiet;
  for (std::size_t i = 0; i < job.points.size(); ++i) {
    if (!configs[i]) continue;
    if (!timed_by) {
      timed_by = i;
      try {
        timed = simulate_timing(*configs[i], inputs.traces[job.trace], inputs.spec.options, quiet);
      } catch (const std::exception& e) {
        timing_error = error_outcome(e);
      }
    }
    if (!timed) {
      outcomes[i] = timing_error;
    } else {
      try {
        const nlohmann::json report = to_json(report_run(*timed, configs[i]->chip, quiet));
        nlohmann::json metrics = nlohmann::json::object();
        for (const std::string& pointer : inputs.spec.metrics) {
          const nlohmann::json::json_pointer p(pointer);
          metrics[pointer] = report.contains(p) ? report.at(p) : nlohmann::json();
        }
        outcomes[i] = {{"status", "ok"}, {"metrics", metrics}};
      } catch (const std::exception& e) {
        outcomes[i] = error_outcome(e);
      }
    }
    if (*timed_by != i) outcomes[i]["timing_of"] = job.points[*timed_by].key;
  }
  return outcomes;
}

// Runs each point in a forked process of its own, so that a crash stays with
// its point, and makes its results line. Every mode runs points through this.
class PointWorkers {
 public:
  // `rank`: the MPI rank, written into each record under MPI.
  PointWorkers(const SweepInputs& inputs, const SweepOptions& options, std::optional<int> rank)
      : inputs_(inputs), work_(options.out_dir / ".workers"), timeout_(options.point_timeout_seconds), rank_(rank) {
    std::filesystem::create_directories(work_);
  }

  std::size_t running() const { return running_.size(); }

  void start(Job job) {
    std::cout.flush();
    std::cerr.flush();
    const pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("cannot start a sweep worker (fork failed)");
    if (pid == 0) {  // the worker: one point, one SystemC simulation, then out
      if (timeout_) {  // SIGALRM's default action ends the worker
        const auto micros = static_cast<long long>(std::ceil(*timeout_ * 1e6));
        itimerval timer{};
        timer.it_value.tv_sec = static_cast<time_t>(micros / 1000000);
        timer.it_value.tv_usec = static_cast<suseconds_t>(micros % 1000000);
        setitimer(ITIMER_REAL, &timer, nullptr);
      }
      const nlohmann::json outcome = run_job(job, inputs_);
      std::ofstream out(result_file(job));
      out << outcome.dump();
      out.close();
      _exit(out ? 0 : 3);
    }
    running_.emplace(pid, std::move(job));
  }

  // The results lines of a worker that has ended (one per point of its job);
  // waits for one if `wait`, else nullopt when none has.
  std::optional<std::vector<nlohmann::json>> finished(bool wait) {
    if (running_.empty()) return std::nullopt;
    for (;;) {
      int status = 0;
      const pid_t pid = waitpid(-1, &status, wait ? 0 : WNOHANG);
      if (pid < 0 && errno == EINTR) continue;
      if (pid < 0) throw std::runtime_error("lost track of the sweep workers (waitpid failed)");
      if (pid == 0) return std::nullopt;
      const auto it = running_.find(pid);
      if (it == running_.end()) continue;  // not a worker of ours
      const Job job = std::move(it->second);
      running_.erase(it);
      return records(job, status);
    }
  }

 private:
  // Named after the job's first point: a point is in one job only.
  std::filesystem::path result_file(const Job& job) const { return work_ / (job.points.front().key + ".json"); }

  std::vector<nlohmann::json> records(const Job& job, int status) const {
    std::ifstream in(result_file(job));
    const nlohmann::json outcomes = in ? nlohmann::json::parse(in, nullptr, false) : nlohmann::json();
    const bool complete = outcomes.is_array() && outcomes.size() == job.points.size() && WIFEXITED(status) &&
                          WEXITSTATUS(status) == 0;
    std::vector<nlohmann::json> records;
    for (std::size_t i = 0; i < job.points.size(); ++i)
      records.push_back(record(job, i, complete ? outcomes[i] : nlohmann::json(), status));
    std::filesystem::remove(result_file(job));
    return records;
  }

  nlohmann::json record(const Job& job, std::size_t point, const nlohmann::json& outcome, int status) const {
    nlohmann::json record = inputs_.record_of(job.trace, job.points[point]);
    if (outcome.is_object()) {
      record.update(outcome);
    } else {
      record["status"] = "crashed";
      if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM && timeout_)
        record["error"] = "the point ran past --point-timeout " + json_text(*timeout_) + " s; its worker was killed";
      else if (WIFSIGNALED(status))
        record["error"] = "the worker was killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
                          strsignal(WTERMSIG(status)) + ")";
      else
        record["error"] = "the worker exited with status " + std::to_string(WEXITSTATUS(status));
    }
    if (rank_) record["rank"] = *rank_;
    return record;
  }

  const SweepInputs& inputs_;
  std::filesystem::path work_;
  std::optional<double> timeout_;
  std::optional<int> rank_;
  std::map<pid_t, Job> running_;
};

class ResultsFile {
 public:
  ResultsFile(const std::filesystem::path& dir, bool resume) : file_(dir / "results.jsonl") {
    prepare_output_directory(dir);
    if (std::filesystem::exists(file_) && std::filesystem::file_size(file_) > 0) {
      if (!resume)
        throw InputError(file_.string(), "", "a sweep's results are already here: add --resume to go on with it, "
                                             "or give another --out");
      std::ifstream in(file_);
      for (std::string line; std::getline(in, line);) {
        // A line cut short by a kill is not a result: its point runs again.
        const nlohmann::json record = nlohmann::json::parse(line, nullptr, false);
        if (record.is_object() && record.contains("key") && record["key"].is_string())
          done_.insert(record["key"].get<std::string>());
      }
    }
    // A line cut short by a kill must not swallow the next result.
    bool ends_line = true;
    if (std::ifstream tail(file_, std::ios::binary | std::ios::ate); tail && tail.tellg() > 0) {
      tail.seekg(-1, std::ios::end);
      ends_line = tail.get() == '\n';
    }
    out_.open(file_, std::ios::app);
    if (!out_) throw InputError(file_.string(), "", "cannot write the results file");
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
  // `each_point`: also a line per point as it comes in (--verbose).
  Progress(std::ostream& out, std::size_t total, bool each_point)
      : out_(out), total_(total), each_point_(each_point), start_(clock::now()), last_(start_) {}

  void count(const nlohmann::json& record) {
    const bool ok = record.at("status") == "ok";
    ++done_;
    failed_ += ok ? 0 : 1;
    if (each_point_)
      out_ << "sweep: " << record.at("status").get<std::string>() << " " << record.at("key").get<std::string>() << " "
           << record.at("settings").dump() << (ok ? "" : ": " + record.value("error", std::string())) << '\n';
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
  bool each_point_;
  clock::time_point start_, last_;
};

// The side that owns results.jsonl (the only process, or rank 0): the points
// to run, in order, and the record of each as it comes in.
class Coordinator {
 public:
  Coordinator(const SweepInputs& inputs, const SweepOptions& options, std::ostream& progress)
      : inputs_(inputs), work_(options.out_dir / ".workers"), results_(options.out_dir, options.resume) {
    plan();
    std::size_t points = 0;
    for (const Job& job : jobs_) points += job.points.size();
    meter_.emplace(progress, points, options.report_each_point);
  }

  bool has_next() const { return next_ < jobs_.size(); }
  const Job& next() { return jobs_[next_++]; }

  void record(const std::vector<nlohmann::json>& records) {
    for (const nlohmann::json& record : records) {
      const bool ok = record["status"] == "ok";
      (ok ? summary_.ok : summary_.failed) += 1;
      results_.append(record);
      meter_->count(record);
    }
  }

  // Once every point is in.
  SweepSummary finish() {
    std::filesystem::remove_all(work_);
    return summary_;
  }

 private:
  // Skips what is done, drops what the constraints exclude and records at once
  // the points whose settings do not apply; the rest become jobs, points that
  // differ only in the energy model sharing one.
  void plan() {
    std::set<std::string> queued;
    std::map<std::string, std::size_t> job_of_timing;  // open jobs, by timing_text and trace
    for (const auto& settings : expand_points(inputs_.spec))
      for (std::size_t t = 0; t < inputs_.traces.size(); ++t) {
        ++summary_.points;
        ConfigDocument document = inputs_.base;
        std::string error;
        try {
          for (const Setting& s : settings) apply_override(document, override_text(s));
        } catch (const InputError& e) {
          error = e.what();
        }
        Point point{point_key(document.json, inputs_.spec.traces[t], inputs_.spec.options), settings};
        if (results_.done(point.key) || queued.count(point.key)) {
          ++summary_.skipped;
          continue;
        }
        if (error.empty() && !satisfies(inputs_.spec.constraints, document.json)) {
          ++summary_.dropped;
          continue;
        }
        queued.insert(point.key);
        if (error.empty()) {
          const std::string timing = timing_text(document.json) + "\n" + std::to_string(t);
          const auto open = job_of_timing.find(timing);
          if (open != job_of_timing.end() && jobs_[open->second].points.size() < kMaxPointsPerJob) {
            jobs_[open->second].points.push_back(std::move(point));
          } else {
            job_of_timing[timing] = jobs_.size();
            jobs_.push_back({t, {std::move(point)}});
          }
          continue;
        }
        nlohmann::json failure = inputs_.record_of(t, point);
        failure.update({{"status", "error"}, {"error", error}});
        results_.append(failure);
        ++summary_.failed;
      }
  }

  const SweepInputs& inputs_;
  std::filesystem::path work_;
  ResultsFile results_;
  std::vector<Job> jobs_;
  std::size_t next_ = 0;
  SweepSummary summary_;
  std::optional<Progress> meter_;
};

SweepSummary run_local(const std::filesystem::path& spec_file, const SweepOptions& options, std::ostream& progress) {
  const SweepInputs inputs(spec_file);
  Coordinator coordinator(inputs, options, progress);
  PointWorkers workers(inputs, options, std::nullopt);
  const auto slots = static_cast<std::size_t>(
      options.jobs.value_or(static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))));
  while (coordinator.has_next() || workers.running() > 0) {
    while (coordinator.has_next() && workers.running() < slots) workers.start(coordinator.next());
    coordinator.record(*workers.finished(true));
  }
  return coordinator.finish();
}

// Messages between the ranks: a rank with a free slot asks rank 0, which
// answers with a job (or an empty message: no more), and sends each record back.
enum Tag : int { kAskTag = 1, kJobTag, kRecordTag };

// Rank 0: runs points itself while it answers the other ranks. It polls, since
// a blocking MPI receive spins on a core the points could use.
SweepSummary share_out(Coordinator& coordinator, PointWorkers& own, std::size_t slots,
                       const mpi::communicator& world) {
  int ranks_asking = world.size() - 1;  // not yet told that no job is left
  std::size_t away = 0;                 // jobs at other ranks, their records not yet in
  while (ranks_asking > 0 || away > 0 || own.running() > 0 || coordinator.has_next()) {
    while (coordinator.has_next() && own.running() < slots) own.start(coordinator.next());
    bool idle = true;
    if (const auto record = own.finished(false)) {
      coordinator.record(*record);
      idle = false;
    }
    if (const auto message = world.iprobe(mpi::any_source, mpi::any_tag)) {
      idle = false;
      if (message->tag() == kRecordTag) {
        std::string records;
        world.recv(message->source(), kRecordTag, records);
        coordinator.record(nlohmann::json::parse(records).get<std::vector<nlohmann::json>>());
        --away;
      } else {
        world.recv(message->source(), kAskTag);
        if (coordinator.has_next()) {
          world.send(message->source(), kJobTag, job_message(coordinator.next()));
          ++away;
        } else {
          world.send(message->source(), kJobTag, std::string());
          --ranks_asking;
        }
      }
    }
    if (idle) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return coordinator.finish();
}

// Any other rank: asks for a job whenever it has a free slot, until there are none.
void serve_rank_zero(PointWorkers& workers, std::size_t slots, const mpi::communicator& world) {
  bool more = true;
  while (more || workers.running() > 0) {
    while (more && workers.running() < slots) {
      world.send(0, kAskTag);
      std::string job;
      world.recv(0, kJobTag, job);
      if (job.empty())
        more = false;
      else
        workers.start(job_from_message(job));
    }
    if (workers.running() > 0) world.send(0, kRecordTag, nlohmann::json(*workers.finished(true)).dump());
  }
}

}  // namespace

std::string point_key(const nlohmann::json& config_document, const std::filesystem::path& trace,
                      const SimulationOptions& options) {
  return stable_digest(config_document.dump() + "\n" + trace.string() + "\n" + options_text(options));
}

bool started_by_mpi_launcher() {
  // Open MPI's mpirun, then PMIx (srun --mpi=pmix, other launchers), then PMI2 (srun --mpi=pmi2).
  for (const char* variable : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"})
    if (std::getenv(variable)) return true;
  return false;
}

std::optional<SweepSummary> run_sweep(const std::filesystem::path& spec_file, const SweepOptions& options,
                                      std::ostream& progress) {
  if (!started_by_mpi_launcher()) return run_local(spec_file, options, progress);
  std::exception_ptr input_error;  // rank 0's: thrown after MPI is finalised, to be reported as without MPI
  std::optional<SweepSummary> summary;
  {
    const mpi::environment environment;
    const mpi::communicator world;
    const auto slots = static_cast<std::size_t>(options.jobs.value_or(1));
    try {
      bool go = false;
      if (world.rank() == 0) {
        std::optional<SweepInputs> inputs;
        std::optional<Coordinator> coordinator;
        try {
          inputs.emplace(spec_file);
          coordinator.emplace(*inputs, options, progress);
        } catch (const InputError&) {
          input_error = std::current_exception();
        }
        go = !input_error;
        mpi::broadcast(world, go, 0);
        if (go) {
          PointWorkers own(*inputs, options, 0);
          summary = share_out(*coordinator, own, slots, world);
        }
      } else {
        mpi::broadcast(world, go, 0);
        if (go) {
          const SweepInputs inputs(spec_file);
          PointWorkers workers(inputs, options, world.rank());
          serve_rank_zero(workers, slots, world);
        }
      }
    } catch (const std::exception& e) {
      // Rank 0 cannot go on without this rank, nor this rank without rank 0: end the job.
      const bool bad_input = dynamic_cast<const InputError*>(&e) != nullptr;
      progress << "lptsim sweep: rank " << world.rank() << " on " << mpi::environment::processor_name()
               << (bad_input ? ": error: " : ": failed: ") << e.what() << '\n'
               << std::flush;
      environment.abort(bad_input ? kExitBadInput : kExitFailed);
    }
  }
  if (input_error) std::rethrow_exception(input_error);
  return summary;
}

}  // namespace lpt
