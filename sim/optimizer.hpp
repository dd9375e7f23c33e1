// The optimizers, as data: each is a parameter struct with its JSON schema,
// the state it keeps per weight, the element-wise work of its update and the
// work of its own phases (sim/phase), and which of those phases run at which
// step. Adding one is a struct, its schema and its rows in optimizer.cpp.
//
// SGD with momentum and Adam (Kingma & Ba, ICLR 2015) update element-wise.
// K-FAC (Martens & Grosse, ICML 2015; convolutions as in Grosse & Martens,
// ICML 2016) in KAISA's form (Pauloski et al., SC 2021) preconditions the
// gradients of convolutions and linear layers with the inverses of two
// Kronecker factors per layer; other layers keep SGD-momentum's update.
// AdaHessian (Yao et al., AAAI 2021) estimates the Hessian's diagonal each
// step with Hutchinson's method (one Hessian-vector product, a second
// backward pass) and uses it as Adam uses the squared gradient.
// ESGD (Cui et al., NeurIPS 2018) evolves a population of individuals, each
// trained by SGD-momentum for some steps per generation, then evaluated
// (forward only) and selected; its step is SGD-momentum's, and its
// generation is counted from that step and the evaluation pass
// (sim/optimizer_report).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/common/json_reader.hpp"
#include "models/common/param_schema.hpp"
#include "sim/phase.hpp"

namespace lpt {

struct LayerWork;
struct ElementwiseWork;

struct SgdMomentum {
  bool operator==(const SgdMomentum&) const = default;
};

struct Adam {
  bool operator==(const Adam&) const = default;
};

struct Kfac {
  // The settings of KAISA's ImageNet ResNet-50 runs (its kfac_pytorch
  // example: factors every 10 steps, inverses every 100, damping 0.001).
  int factor_interval = 10;
  int inverse_interval = 100;
  // Newton–Schulz iterations per inverse, X <- X(2I - F·X): two GEMMs each,
  // on the MAC arrays. From X₀ = I/‖F‖ a factor of condition κ needs about
  // log2(κ·√d) iterations before the quadratic convergence; 20 bring the
  // fidelity pass's factor (κ ≈ 1.5·10⁴ at damping 0.001) to the precision
  // of DLFloat16, where 12 leave |I − FX| ≈ 0.5 (docs/optimizers.md).
  int newton_schulz_iterations = 20;
  // On a system of chips (KAISA): the fraction of the chips that are each
  // layer's gradient workers, holding its inverses and preconditioning its
  // gradient; 1 is KAISA's COMM-OPT, 1/chips its MEM-OPT.
  double grad_worker_fraction = 1;
  // Tikhonov damping relative to a factor's mean eigenvalue (0.001 as in
  // that example); it sets how well-conditioned the inverted factors are,
  // which the fidelity pass's Newton–Schulz measurement uses.
  double damping = 1e-3;
  bool operator==(const Kfac&) const = default;
};

struct AdaHessian {
  bool operator==(const AdaHessian&) const = default;
};

// A generation (Cui et al., Algorithm 1): each of μ individuals trains K
// steps, is evaluated and backs off to its saved copy if it got worse; λ
// offspring are made by recombining two parents and mutating, and evaluated;
// μ of the μ + λ are kept (by reference: no copy).
struct Esgd {
  // Our defaults, not the paper's: a small population for one chip.
  int population = 8;              // μ individuals
  int offspring = 8;               // λ per generation
  int steps_per_generation = 100;  // K SGD-momentum steps of each individual per generation
  std::int64_t evaluation_batch = 0;  // samples of the validation pass per individual (0: the training batch)
  bool operator==(const Esgd&) const = default;
};

using Optimizer = std::variant<SgdMomentum, Adam, Kfac, AdaHessian, Esgd>;

std::string_view optimizer_name(const Optimizer& optimizer);
// A name ("kfac": its defaults) or an object with "name" and that optimizer's
// parameters; errors name the JSON path.
Optimizer read_optimizer(const JsonReader& in);
nlohmann::json optimizer_json(const Optimizer& optimizer);
// The reference sections of the optimizers' objects, at `path`.
void describe_optimizers(const std::string& path, param::ObjectDocs& docs);
std::string optimizer_names();  // "`sgd_momentum`, `adam`, ..." for the reference

// Elements of optimizer state kept per weight of a layer it updates
// element-wise (momentum: 1; Adam's and AdaHessian's moments: 2).
int state_per_weight(const Optimizer& optimizer);
// ESGD's individuals (its population) on each of `chips` chips, one chip
// taking its share, rounded up; 1 for other optimizers.
int individuals_per_chip(const Optimizer& optimizer, int chips);
// Copies of the weights and optimizer state a chip holds: for ESGD its
// individuals, their back-off copies and its share of the offspring; else 1.
int weight_copies_per_chip(const Optimizer& optimizer, int chips);

// The update of `parameters` weights: elements read and written, SFU
// operations, and every written weight and state element through a rounder.
ElementwiseWork update_work(const Optimizer& optimizer, std::int64_t parameters);

// Adds the optimizer's own phases to an expanded layer (after fusion: a
// second backward pass repeats the fused backward work): K-FAC's curvature,
// inverse and preconditioning work, AdaHessian's Hessian pass.
void add_optimizer_phases(LayerWork& layer, const Optimizer& optimizer);

// KAISA's division of K-FAC's work on a system of `chips` (Pauloski et al.,
// SC 2021), for the chip simulated: each layer's inverses are computed by one
// chip (layers assigned by a greedy balance of their inverses' MACs), whose
// group of `gradient_workers` consecutive chips holds them and preconditions
// the layer's gradient; the other chips receive the preconditioned gradient.
// The chip simulated is the busiest (every chip is taken to be as busy).
struct KaisaShare {
  int gradient_workers = 1;
  std::vector<bool> inverts;         // by layer: this chip computes its inverses
  std::vector<bool> preconditions;   // by layer: this chip is one of its gradient workers
  std::uint64_t group_inverse_elements = 0;  // the inverses its group holds
  std::uint64_t gradient_elements = 0;       // every preconditioned layer's gradient
};
// One chip: it does all of it.
KaisaShare kaisa_share(const std::vector<LayerWork>& layers, const Kfac& kfac, int chips);

// The optimizer's phases that run only at some steps, and which of them run
// at step `step` (counting from 0, when every phase runs).
std::set<Phase> intermittent_phases(const Optimizer& optimizer);
std::set<Phase> intermittent_phases_at(const Optimizer& optimizer, std::int64_t step);

// Steps of one kind in the optimizer's schedule: the intermittent phases they
// skip, and their share of the steps of a long run.
struct StepShare {
  std::set<Phase> skipped;
  double share = 1;
};
// The kinds of step in the optimizer's schedule, the one with every phase
// first; their shares add up to 1.
std::vector<StepShare> step_shares(const Optimizer& optimizer);

}  // namespace lpt
