#include "sim/optimizer.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "models/common/checked_math.hpp"
#include "sim/workload.hpp"

namespace lpt {

namespace {

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;  // clang 14 deduces no aggregate's arguments

const param::Schema<Kfac>& kfac_schema() {
  using K = param::Keys<Kfac>;
  static const param::Schema<Kfac> schema(
      "K-FAC in KAISA's form (`name`: `kfac`; docs/optimizers.md): per convolution and linear layer the factors "
      "A = aᵀa over the layer's (im2col) inputs and G = gᵀg over the gradients at its output, their inverses, and "
      "the preconditioned gradient A⁻¹·dW·G⁻¹ with SGD-momentum's update; other layers keep SGD-momentum.",
      {K::optional(K::integer("factor_interval", &Kfac::factor_interval, 1, 100000, "steps",
                              "the factors are computed and averaged every this many steps")),
       K::optional(K::integer("inverse_interval", &Kfac::inverse_interval, 1, 100000, "steps",
                              "the factors' inverses are computed every this many steps")),
       K::optional(K::integer("newton_schulz_iterations", &Kfac::newton_schulz_iterations, 1, 100, "iterations",
                              "per inverse, each two d×d×d GEMMs on the MAC arrays (an assumption; "
                              "docs/optimizers.md)")),
       K::optional(K::number("damping", &Kfac::damping, 1e-8, 1, {},
                             "Tikhonov damping added to each factor, relative to its mean eigenvalue: no cost, it "
                             "sets the conditioning of the Newton–Schulz inverses the fidelity pass measures")),
       K::optional(K::number("grad_worker_fraction", &Kfac::grad_worker_fraction, 1.0 / 1024, 1, "fraction",
                             "on a `system`: the share of chips that are a layer's gradient workers (KAISA; "
                             "fraction × chips must be a whole number dividing the chips): 1 all-gathers every "
                             "inverse to every chip, 1/chips keeps each on one chip and all-gathers the "
                             "preconditioned gradients instead"))});
  return schema;
}

const param::Schema<Esgd>& esgd_schema() {
  using K = param::Keys<Esgd>;
  static const param::Schema<Esgd> schema(
      "ESGD (`name`: `esgd`; Cui et al., NeurIPS 2018; docs/optimizers.md): a population of individuals, each "
      "trained by SGD-momentum for `steps_per_generation` steps and evaluated by a forward pass over a validation "
      "batch, backing off to its saved copy if it got worse; then `offspring` are recombined from two parents, "
      "mutated and evaluated, and the best are kept (m-elitist selection). On one chip the individuals take turns, "
      "their weights and state kept in DRAM; on a `system` each chip trains its share of them at the whole batch.",
      {K::optional(K::integer("population", &Esgd::population, 1, 4096, "individuals", "μ, the population")),
       K::optional(K::integer("offspring", &Esgd::offspring, 0, 4096, "individuals",
                              "λ, offspring made per generation by recombining two parents and mutating")),
       K::optional(K::integer("steps_per_generation", &Esgd::steps_per_generation, 1, 1000000, "steps",
                              "K, SGD-momentum steps of each individual per generation")),
       K::optional(K::integer("evaluation_batch", &Esgd::evaluation_batch, 1, std::int64_t{1} << 20, "samples",
                              "the validation pass of each individual per generation"),
                   "the training batch")});
  return schema;
}

struct Entry {
  std::string_view name;
  Optimizer defaults;
  std::string_view description;
};

// The optimizers, by name. A variant alternative without a row cannot be
// read, and optimizer_name finds its row by index.
const std::vector<Entry>& entries() {
  static const std::vector<Entry> table = {
      {"sgd_momentum", SgdMomentum{}, "SGD with momentum: v = μv + g + λw, w -= ηv"},
      {"adam", Adam{}, "Adam: two moments, a square root and a divide per weight"},
      {"kfac", Kfac{}, "K-FAC in KAISA's form; parameters below"},
      {"adahessian", AdaHessian{},
       "AdaHessian: a Hessian-vector product per step (a second backward pass), Adam's update with the Hessian's "
       "diagonal"},
      {"esgd", Esgd{}, "ESGD: a population trained by SGD-momentum, evaluated and selected; parameters below"},
  };
  return table;
}

}  // namespace

std::string_view optimizer_name(const Optimizer& optimizer) { return entries().at(optimizer.index()).name; }

std::string optimizer_names() {
  std::string names;
  for (const Entry& e : entries()) names += (names.empty() ? "`" : ", `") + std::string(e.name) + "`";
  return names;
}

Optimizer read_optimizer(const JsonReader& in) {
  std::vector<std::pair<std::string_view, std::size_t>> choices;
  for (std::size_t i = 0; i < entries().size(); ++i) choices.emplace_back(entries()[i].name, i);
  const auto chosen = [&](const JsonReader& name) {
    return entries()[name.choice(std::span<const std::pair<std::string_view, std::size_t>>(choices))].defaults;
  };
  if (in.json().is_string()) return chosen(in);
  if (!in.json().is_object())
    in.fail("expected an optimizer's name (" + optimizer_names() + ") or an object with \"name\" and its "
            "parameters, got " + std::string(in.json().type_name()));
  Optimizer optimizer = chosen(in.at("name"));
  std::visit(Overloaded{[&](Kfac& k) { kfac_schema().read_into(in, k); },
                        [&](Esgd& e) { esgd_schema().read_into(in, e); }, [&](auto&) { in.finish(); }},
             optimizer);
  return optimizer;
}

nlohmann::json optimizer_json(const Optimizer& optimizer) {
  return std::visit(Overloaded{[](const Kfac& k) -> nlohmann::json {
                                 return {{"name", "kfac"},
                                         {"factor_interval", k.factor_interval},
                                         {"inverse_interval", k.inverse_interval},
                                         {"newton_schulz_iterations", k.newton_schulz_iterations},
                                         {"grad_worker_fraction", k.grad_worker_fraction},
                                         {"damping", k.damping}};
                               },
                               [](const Esgd& e) -> nlohmann::json {
                                 nlohmann::json out = {{"name", "esgd"},
                                                       {"population", e.population},
                                                       {"offspring", e.offspring},
                                                       {"steps_per_generation", e.steps_per_generation}};
                                 if (e.evaluation_batch > 0) out["evaluation_batch"] = e.evaluation_batch;
                                 return out;
                               },
                               [&](const auto&) -> nlohmann::json { return std::string(optimizer_name(optimizer)); }},
                    optimizer);
}

void describe_optimizers(const std::string& path, param::ObjectDocs& docs) {
  kfac_schema().describe(path + " (kfac)", docs);
  esgd_schema().describe(path + " (esgd)", docs);
}

int state_per_weight(const Optimizer& optimizer) {
  return std::visit(Overloaded{[](const Adam&) { return 2; }, [](const AdaHessian&) { return 2; },
                               [](const auto&) { return 1; }},
                    optimizer);
}

int individuals_per_chip(const Optimizer& optimizer, int chips) {
  const auto* esgd = std::get_if<Esgd>(&optimizer);
  return esgd ? (esgd->population + chips - 1) / chips : 1;
}

int weight_copies_per_chip(const Optimizer& optimizer, int chips) {
  const auto* esgd = std::get_if<Esgd>(&optimizer);
  return esgd ? 2 * individuals_per_chip(optimizer, chips) + (esgd->offspring + chips - 1) / chips : 1;
}

ElementwiseWork update_work(const Optimizer& optimizer, std::int64_t parameters) {
  // Per weight: elements read, written; ALU, exp, divide/square-root operations.
  struct PerWeight {
    int reads, writes, alu, div_sqrt;
  };
  const PerWeight per = std::visit(
      Overloaded{// w, g, m, v in; w, m, v out; bias corrections, a square root and a divide.
                 [](const Adam&) { return PerWeight{4, 3, 10, 2}; },
                 // As Adam with the Hessian diagonal D for g² (D in: one more read).
                 [](const AdaHessian&) { return PerWeight{5, 3, 11, 2}; },
                 // w, g, v in; w, v out (K-FAC's preconditioned g is read in g's place).
                 [](const auto&) { return PerWeight{3, 2, 4, 0}; }},
      optimizer);
  ElementwiseWork w;
  w.read_elements = checked_mul<std::int64_t>(per.reads, parameters);
  w.write_elements = checked_mul<std::int64_t>(per.writes, parameters);
  w.ops.alu = checked_mul<std::uint64_t>(per.alu, parameters);
  w.ops.div_sqrt = checked_mul<std::uint64_t>(per.div_sqrt, parameters);
  w.rounded_elements = w.write_elements;
  return w;
}

namespace {

// Whether K-FAC preconditions the layer (KAISA: convolutions and linear layers).
bool kfac_preconditions(const LayerWork& layer) {
  return (layer.type == "conv2d" || layer.type == "depthwise_conv2d" || layer.type == "linear") &&
         layer.parameters > 0 &&
         layer.phase(Phase::kWgrad).gemms.size() == 1;
}

// A streaming pass over `elements`: per element `reads` in, `writes` out, `alu` operations.
ElementwiseWork pass(std::int64_t elements, int reads, int writes, int alu) {
  ElementwiseWork w;
  w.read_elements = checked_mul<std::int64_t>(reads, elements);
  w.write_elements = checked_mul<std::int64_t>(writes, elements);
  w.ops.alu = checked_mul<std::uint64_t>(alu, elements);
  return w;
}

// K-FAC of one layer whose weight gradient is dW = Xᵀ·dY (d_in x d_out,
// reduced over the rows of X): factors A (d_in²) and G (d_out²), per group.
void add_kfac(LayerWork& layer, const Kfac& kfac) {
  const GemmWork dw = layer.phase(Phase::kWgrad).gemms.front();
  const std::int64_t d_in = dw.m, d_out = dw.n, rows = dw.k, count = dw.count;
  const std::int64_t factor_elements = checked_mul(count, checked_add(checked_mul(d_in, d_in), checked_mul(d_out, d_out)));

  auto& curvature = layer.phase(Phase::kCurvature);
  GemmWork a{"A=a^T*a", d_in, d_in, rows, count, 1, Phase::kCurvature, dw.a_window};
  a.a_from = a.b_from = OperandSource::kLayerInput;
  GemmWork g{"G=g^T*g", d_out, d_out, rows, count, 1, Phase::kCurvature};
  g.a_from = g.b_from = OperandSource::kOutputGradient;
  curvature.gemms = {a, g};
  curvature.elementwise += pass(factor_elements, 2, 1, 2);  // F = ξF + (1 - ξ)F_new

  // Newton–Schulz per factor: X0 = I / ‖F + λI‖ (a pass over F), then each
  // iteration T = F·X and X = X·(2I - T), the 2I - T a pass over T.
  auto& inverse = layer.phase(Phase::kInverse);
  const std::int64_t iterations = kfac.newton_schulz_iterations;
  for (const auto& [label, d] : {std::pair{"A^-1 (Newton-Schulz)", d_in}, std::pair{"G^-1 (Newton-Schulz)", d_out}})
    inverse.gemms.push_back({label, d, d, d, count, 2 * iterations, Phase::kInverse});
  inverse.elementwise += pass(factor_elements, 1, 1, 2);
  inverse.elementwise += pass(checked_mul(factor_elements, iterations), 1, 1, 1);

  // P = A⁻¹·dW·G⁻¹, then KAISA's KL clipping: ν = min(1, sqrt(κ / (η² Σ p·g))) scales P.
  auto& precondition = layer.phase(Phase::kPrecondition);
  precondition.gemms = {{"P=A^-1*dW", d_in, d_out, d_in, count, 1, Phase::kPrecondition},
                        {"P=P*G^-1", d_in, d_out, d_out, count, 1, Phase::kPrecondition}};
  precondition.elementwise += pass(layer.parameters, 3, 1, 3);
}

// AdaHessian's second backward pass repeats the layer's backward work (its
// data- and weight-gradient GEMMs and element-wise work, fused as in the
// first), then per weight: draw the Rademacher vector z, take z·Hz (Hutchinson)
// and average it spatially over a convolution's kernel window.
void add_adahessian(LayerWork& layer) {
  PhaseWork& hessian = layer.phase(Phase::kHessian);
  for (const Phase first : {Phase::kBwd, Phase::kWgrad}) {
    const PhaseWork& work = layer.phase(first);
    hessian.gemms.insert(hessian.gemms.end(), work.gemms.begin(), work.gemms.end());
    hessian.elementwise += work.elementwise;
  }
  if (layer.parameters > 0) {
    hessian.elementwise += pass(layer.parameters, 0, 1, 1);  // z
    hessian.elementwise += pass(layer.parameters, 2, 1, 1);  // z·Hz
    if (layer.type == "conv2d" || layer.type == "depthwise_conv2d")
      hessian.elementwise += pass(layer.parameters, 1, 1, 1);  // spatial average
  }
}

std::int64_t lcm_of(std::int64_t a, std::int64_t b) { return a / std::gcd(a, b) * b; }

}  // namespace

void add_optimizer_phases(LayerWork& layer, const Optimizer& optimizer) {
  std::visit(Overloaded{[&](const Kfac& k) {
                          if (kfac_preconditions(layer)) add_kfac(layer, k);
                        },
                        [&](const AdaHessian&) { add_adahessian(layer); }, [](const auto&) {}},
             optimizer);
}

KaisaShare kaisa_share(const std::vector<LayerWork>& layers, const Kfac& kfac, int chips) {
  KaisaShare share;
  share.gradient_workers = std::max(1, static_cast<int>(std::lround(kfac.grad_worker_fraction * chips)));
  std::vector<std::size_t> kfac_layers;
  for (std::size_t i = 0; i < layers.size(); ++i)
    if (!layers[i].phase(Phase::kInverse).empty()) kfac_layers.push_back(i);
  // Greedy balance: the largest inverses first, each to the least loaded chip.
  std::vector<std::size_t> order = kfac_layers;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return layers[a].phase(Phase::kInverse).macs() > layers[b].phase(Phase::kInverse).macs();
  });
  std::vector<double> load(static_cast<std::size_t>(chips), 0);
  std::vector<int> owner(layers.size(), -1);
  for (const std::size_t i : order) {
    const auto least = static_cast<std::size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    owner[i] = static_cast<int>(least);
    load[least] += static_cast<double>(layers[i].phase(Phase::kInverse).macs());
  }
  const int busiest = static_cast<int>(std::max_element(load.begin(), load.end()) - load.begin());
  const int group = busiest / share.gradient_workers;
  share.inverts.assign(layers.size(), false);
  share.preconditions.assign(layers.size(), false);
  for (const std::size_t i : kfac_layers) {
    share.inverts[i] = owner[i] == busiest;
    share.preconditions[i] = owner[i] / share.gradient_workers == group;
    if (share.preconditions[i]) share.group_inverse_elements += static_cast<std::uint64_t>(layers[i].phase(Phase::kInverse).output_elements());
    share.gradient_elements += static_cast<std::uint64_t>(layers[i].parameters);
  }
  return share;
}

std::set<Phase> intermittent_phases(const Optimizer& optimizer) {
  if (std::holds_alternative<Kfac>(optimizer)) return {Phase::kCurvature, Phase::kInverse};
  return {};
}

std::set<Phase> intermittent_phases_at(const Optimizer& optimizer, std::int64_t step) {
  std::set<Phase> out;
  if (const auto* k = std::get_if<Kfac>(&optimizer)) {
    if (step % k->factor_interval == 0) out.insert(Phase::kCurvature);
    if (step % k->inverse_interval == 0) out.insert(Phase::kInverse);
  }
  return out;
}

std::vector<StepShare> step_shares(const Optimizer& optimizer) {
  const auto* k = std::get_if<Kfac>(&optimizer);
  if (!k) return {StepShare{}};
  // A step computes factors when its index is a multiple of factor_interval,
  // inverses when one of inverse_interval, both when one of their lcm.
  const double factors = 1.0 / k->factor_interval, inverses = 1.0 / k->inverse_interval;
  const double both = 1.0 / static_cast<double>(lcm_of(k->factor_interval, k->inverse_interval));
  std::vector<StepShare> kinds = {{{}, both},
                                 {{Phase::kInverse}, factors - both},
                                 {{Phase::kCurvature}, inverses - both},
                                 {{Phase::kCurvature, Phase::kInverse}, 1 - factors - inverses + both}};
  std::erase_if(kinds, [](const StepShare& kind) { return kind.share <= 1e-12; });
  return kinds;
}

}  // namespace lpt
