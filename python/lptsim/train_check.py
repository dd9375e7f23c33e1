"""lptsim train-check: does the arithmetic still train?

Trains an MLP and a small CNN on scikit-learn's bundled digits (1,797 8x8 images of
handwritten digits, 10 classes; no download) with every GEMM of the forward pass, the data
gradient and the weight gradient on the emulated datapath (lptsim.torch) and the weight
update through the configured rounder, for the datapaths of the low-precision training
papers and the config's own policy, over several seeds. Writes curves.csv (per epoch),
summary.csv (final test accuracy per model and datapath) and, with matplotlib, accuracy and
loss plots; prints the summary with the papers' claim checked against FP32.

Usage: /usr/bin/python3 -m lptsim.train_check [--config F] [--set /ptr=value ...] [--out DIR]
       [--models mlp,cnn] [--variants ...] [--seeds N] [--epochs E] [--quick]
(`lptsim train-check` runs this module with the same arguments.)
"""

import argparse
import concurrent.futures
import csv
import math
import os
import sys
import time

import numpy as np

import lptsim

# The papers' datapaths. Each entry: a one-line description with its source, and a builder of
# the policy. Where a paper leaves a choice open, the builder says what is assumed.
FP4_LOSS_SCALE = 16  # a power of 4: the radix-4 grids keep their phase


def _datapath(a, b, accumulator, chunk=0, output=None, rounding=None):
    # 24 random bits for stochastic stages (the papers do not state the rounder's width).
    return lptsim.Datapath(a, b, accumulator, chunk_length=chunk, output=output, rounding=rounding,
                           stochastic_bits=24)


def _per_phase(fwd, bwd, wgrad, outer=None):
    """A policy's datapaths: (fwd, bwd, wgrad) for middle layers, `outer` for the first and last."""
    datapaths = {"fwd": fwd, "bwd": bwd, "wgrad": wgrad}
    if outer is not None:
        for phase in ("fwd", "bwd", "wgrad"):
            for position in ("first", "last"):
                datapaths[(phase, position)] = outer
    return datapaths


def _fp32():
    # PyTorch's own float32 layers: FP32 training as the papers' baselines ran it (an
    # emulated FP32 datapath would only change the order of the additions, slowly).
    return None


def _fp16():
    # Micikevicius et al. 2018: FP16 operands, FP32 accumulation, FP16 results, FP32 master weights.
    d = _datapath("fp16", "fp16", "fp32", output="fp16")
    return lptsim.Policy(_per_phase(d, d, d), loss_scale="dynamic", update=None, name="fp16")


def _bf16():
    # Kalamkar et al. 2019: BF16 operands, FP32 accumulation, FP32 master weights, no loss scaling.
    d = _datapath("bf16", "bf16", "fp32", output="bf16")
    return lptsim.Policy(_per_phase(d, d, d), loss_scale=1, update=None, name="bf16")


def _fp8_wang2018():
    # Wang et al. 2018: 1-5-2 FP8 operands in every GEMM, FP16 chunk-based accumulation (chunk
    # 64), FP16 weights updated with stochastic rounding, first and last layers in FP16.
    d = _datapath("ibm_fp8", "ibm_fp8", "fp16", chunk=64, output="fp16")
    outer = _datapath("fp16", "fp16", "fp16", chunk=64, output="fp16")
    return lptsim.Policy(_per_phase(d, d, d, outer), loss_scale="dynamic",
                         update=lptsim.Update("fp16", "fp16", "sr", "sr", sr_bits=24), name="fp8_wang2018")


def _hfp8(chunk, update_rounding, name):
    # Sun et al. 2019: 1-4-3 forward, 1-5-2 error gradients, FP16 accumulation, first and last
    # layers in 16 bits; assumed: chunk-based accumulation and stochastically rounded FP16
    # weights as in Wang et al. 2018.
    fwd = _datapath("hfp8_e4m3", "hfp8_e4m3", "fp16", chunk=chunk, output="fp16")
    bwd = _datapath("hfp8_e5m2", "hfp8_e4m3", "fp16", chunk=chunk, output="fp16")
    wgrad = _datapath("hfp8_e4m3", "hfp8_e5m2", "fp16", chunk=chunk, output="fp16")
    outer = _datapath("fp16", "fp16", "fp16", chunk=chunk, output="fp16")
    return lptsim.Policy(_per_phase(fwd, bwd, wgrad, outer), loss_scale="dynamic",
                         update=lptsim.Update("fp16", "fp16", update_rounding, update_rounding, sr_bits=24),
                         name=name)


def _fp4_sun2020():
    # Sun et al. 2020: radix-4 FP4 (1-3-0) error gradients with two-phase rounding: the data
    # gradient reads them on one radix-4 grid, the weight gradient on the grid offset by 2.
    # Assumed: HFP8 forward (the paper's 4-bit forward needs quantization-aware training), a
    # static loss scale of 16 (a power of 4, so that scaling keeps the grids' phase), FP16
    # chunk accumulation and weights as above, first and last layers in FP16.
    fwd = _datapath("hfp8_e4m3", "hfp8_e4m3", "fp16", chunk=64, output="fp16")
    bwd = _datapath("fp4_radix4", "hfp8_e4m3", "fp16", chunk=64, output="fp16")
    wgrad = _datapath("hfp8_e4m3", lptsim.Format({"base": "fp4_radix4", "scale": 2, "name": "fp4_radix4_x2"}),
                      "fp16", chunk=64, output="fp16")
    outer = _datapath("fp16", "fp16", "fp16", chunk=64, output="fp16")
    return lptsim.Policy(_per_phase(fwd, bwd, wgrad, outer), loss_scale=FP4_LOSS_SCALE,
                         update=lptsim.Update("fp16", "fp16", "sr", "sr", sr_bits=24), name="fp4_sun2020")


def _fp8_naive():
    # The weak end, for contrast: what Wang et al. 2018's aids avoid. 1-5-2 FP8 operands in
    # every layer, FP16 accumulation without chunks, and weights and momentum stored in FP8
    # with round-to-nearest, so that updates below half a gap of the weights are lost.
    d = _datapath("ibm_fp8", "ibm_fp8", "fp16", output="fp16")
    return lptsim.Policy(_per_phase(d, d, d), loss_scale="dynamic",
                         update=lptsim.Update("ibm_fp8", "ibm_fp8", "rne", "rne"), name="fp8_naive")


VARIANTS = {
    "fp32": ("FP32 everywhere (the reference)", _fp32),
    "fp16": ("FP16 operands, FP32 accumulation, FP32 master weights (Micikevicius et al. 2018)", _fp16),
    "fp8_wang2018": ("FP8 1-5-2, FP16 chunk-64 accumulation, SR FP16 updates (Wang et al. 2018)", _fp8_wang2018),
    "hfp8": ("HFP8 1-4-3 fwd / 1-5-2 bwd, FP16 chunk-64 accumulation, SR FP16 updates (Sun et al. 2019)",
             lambda: _hfp8(64, "sr", "hfp8")),
    "hfp8_plain_rne": ("HFP8 without chunking, round-to-nearest FP16 updates",
                       lambda: _hfp8(0, "rne", "hfp8_plain_rne")),
    "fp4_sun2020": ("radix-4 FP4 gradients with two-phase rounding, HFP8 fwd (Sun et al. 2020)", _fp4_sun2020),
    "bf16": ("BF16 operands, FP32 accumulation, FP32 master weights (Kalamkar et al. 2019)", _bf16),
    "fp8_naive": ("FP8 1-5-2 everywhere, no chunks, FP8 weights updated to nearest (what Wang'18 avoids)",
                  _fp8_naive),
}
# The papers' claim checked in the summary: HFP8 with chunking within 1 point of FP32.
CLAIM = ("hfp8", "fp32", 1.0)


def load_digits_split(seed=0, test_fraction=0.2):
    """The digits, pixels scaled to [0, 1], split per class (the split fixed by `seed`)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    return train_test_split(x, digits.target.astype(np.int64), test_size=test_fraction, random_state=seed,
                            stratify=digits.target)


def make_model(kind, policy, seed):
    """The MLP (64-256-256-10) or the CNN (three 3x3 convolutions of 8, 16 and 16 channels, a
    2x2 max pool, a linear classifier), its first and last layers at those positions of the
    policy; PyTorch's float32 layers without a policy. The initial weights depend on the seed
    only, not on the policy."""
    import torch
    import lptsim.torch as lt

    def linear(n_in, n_out, position, index):
        if policy is None:
            return torch.nn.Linear(n_in, n_out)
        return lt.Linear(n_in, n_out, policy=policy, position=position, seed=seed * 16 + index)

    def conv(n_in, n_out, position, index):
        if policy is None:
            return torch.nn.Conv2d(n_in, n_out, 3, padding=1)
        return lt.Conv2d(n_in, n_out, 3, padding=1, policy=policy, position=position, seed=seed * 16 + index)

    torch.manual_seed(seed)
    if kind == "mlp":
        return torch.nn.Sequential(
            torch.nn.Flatten(), linear(64, 256, "first", 1), torch.nn.ReLU(), linear(256, 256, "middle", 2),
            torch.nn.ReLU(), linear(256, 10, "last", 3))
    if kind == "cnn":
        return torch.nn.Sequential(
            conv(1, 8, "first", 1), torch.nn.ReLU(), conv(8, 16, "middle", 2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            conv(16, 16, "middle", 3), torch.nn.ReLU(), torch.nn.Flatten(), linear(16 * 4 * 4, 10, "last", 4))
    raise ValueError(f"unknown model {kind!r}; expected mlp or cnn")


def evaluate(model, x, y, batch=256):
    import torch
    loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            logits = model(torch.from_numpy(x[i:i + batch]))
            target = torch.from_numpy(y[i:i + batch])
            loss += float(torch.nn.functional.cross_entropy(logits, target, reduction="sum"))
            correct += int((logits.argmax(1) == target).sum())
    return loss / len(x), correct / len(x)


def train(kind, policy, seed, data, epochs, batch, lr):
    """Yields (epoch, train_loss, test_loss, test_accuracy), epoch 0 being the initial model."""
    import torch
    import lptsim.torch as lt
    x_train, x_test, y_train, y_test = data
    model = make_model(kind, policy, seed)
    sgd = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    rounded = policy is not None and policy.update is not None
    optimizer = lt.RoundedOptimizer(sgd, policy, seed=seed) if rounded else sgd
    if rounded:  # the initial weights are stored in the update's format too
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(lptsim.quantize(p, policy.update.weights))
    order = np.random.default_rng(seed)
    test_loss, test_accuracy = evaluate(model, x_test, y_test)
    yield 0, float("nan"), test_loss, test_accuracy
    for epoch in range(1, epochs + 1):
        permutation = order.permutation(len(x_train))
        total, count = 0.0, 0
        for i in range(0, len(permutation), batch):
            index = permutation[i:i + batch]
            logits = model(torch.from_numpy(x_train[index]))
            loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y_train[index]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if math.isfinite(float(loss)):
                total += float(loss) * len(index)
                count += len(index)
        test_loss, test_accuracy = evaluate(model, x_test, y_test)
        yield epoch, total / count if count else float("nan"), test_loss, test_accuracy


def _single_threaded():
    import torch
    torch.set_num_threads(1)


def _policy(variant, args):
    """The variant's policy, built in the process that trains with it (policies hold native
    datapaths, which do not travel between processes)."""
    if variant == "config":
        return lptsim.load_policy(args.config, args.set)
    return VARIANTS[variant][1]()


def _run(run, args):
    model, variant, seed = run
    policy = _policy(variant, args)
    data = load_digits_split()
    return [{"model": model, "variant": variant, "seed": seed, "epoch": epoch, "train_loss": train_loss,
             "test_loss": test_loss, "test_accuracy": accuracy}
            for epoch, train_loss, test_loss, accuracy in train(model, policy, seed, data, args.epochs, args.batch,
                                                                args.lr)]


def summarise(rows, models, variants):
    """Per model and variant: mean and sample standard deviation of the final test accuracy."""
    final = {}
    last_epoch = max(r["epoch"] for r in rows)
    for r in rows:
        if r["epoch"] == last_epoch:
            final.setdefault((r["model"], r["variant"]), []).append(r["test_accuracy"])
    summary = []
    for model in models:
        reference = final.get((model, "fp32"))
        for variant in variants:
            values = final.get((model, variant))
            if not values:
                continue
            mean = float(np.mean(values))
            std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
            delta = 100 * (mean - float(np.mean(reference))) if reference else float("nan")
            summary.append({"model": model, "variant": variant, "seeds": len(values), "test_accuracy": mean,
                            "std": std, "points_vs_fp32": delta})
    return summary


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def plot(rows, models, variants, out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("lptsim train-check: matplotlib is not installed (Debian: python3-matplotlib); no plots",
              file=sys.stderr)
        return
    for metric, label in (("test_accuracy", "test accuracy"), ("train_loss", "training loss")):
        fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4.5), squeeze=False)
        for axis, model in zip(axes[0], models):
            for variant in variants:
                series = {}
                for r in rows:
                    if r["model"] == model and r["variant"] == variant and math.isfinite(r[metric]):
                        series.setdefault(r["epoch"], []).append(r[metric])
                if series:
                    epochs = sorted(series)
                    axis.plot(epochs, [np.mean(series[e]) for e in epochs], label=variant)
            axis.set_title(f"{model}: {label} (mean over seeds)")
            axis.set_xlabel("epoch")
            axis.grid(alpha=0.3)
            axis.legend(fontsize=8)
        fig.tight_layout()
        for extension in ("png", "svg"):
            fig.savefig(os.path.join(out, f"{metric}.{extension}"))
        plt.close(fig)


def parse_arguments(argv):
    parser = argparse.ArgumentParser(
        prog="lptsim train-check",
        description="Trains an MLP and a small CNN on the digits data set with every GEMM and the weight update "
                    "on emulated datapaths: FP32, FP16, FP8 (Wang'18), HFP8 (Sun'19) with and without chunking, "
                    "FP4 gradients (Sun'20), BF16 and the config's own policy.")
    parser.add_argument("--config", help="an lptsim config whose precision policy is trained as variant 'config'")
    parser.add_argument("--set", action="append", default=[], metavar="/POINTER=VALUE",
                        help="an override of the config, as lptsim run --set; repeatable")
    parser.add_argument("--out", default="train-check-out", help="directory for curves.csv, summary.csv and plots")
    parser.add_argument("--models", default="mlp,cnn", help="comma-separated: mlp, cnn")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated, of: " + ", ".join(VARIANTS) + " (the config's is added)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per model and variant (default 3)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1,
                        help="training runs at once (default: the cores)")
    parser.add_argument("--quick", action="store_true",
                        help="the test's check: the MLP, fp32 and hfp8, 1 seed, 3 epochs")
    parser.add_argument("--quiet", action="store_true", help="only the summary")
    args = parser.parse_args(argv)
    if args.quick:
        args.models, args.variants, args.seeds, args.epochs = "mlp", "fp32,hfp8", 1, 3
    args.models = [m for m in args.models.split(",") if m]
    args.variants = [v for v in args.variants.split(",") if v]
    for model in args.models:
        if model not in ("mlp", "cnn"):
            parser.error(f"--models: unknown model {model!r}; expected mlp or cnn")
    for variant in args.variants:
        if variant not in VARIANTS:
            parser.error(f"--variants: unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    if min(args.seeds, args.epochs, args.batch, args.jobs) < 1 or not args.lr > 0:
        parser.error("--seeds, --epochs, --batch and --jobs must be at least 1, --lr positive")
    if args.set and not args.config:
        parser.error("--set needs --config")
    return args


def main(argv=None):
    args = parse_arguments(sys.argv[1:] if argv is None else argv)
    variants = list(args.variants)
    if args.config:
        try:  # a bad config is reported before any training
            lptsim.load_policy(args.config, args.set)
        except ValueError as e:
            print(f"lptsim train-check: {e}", file=sys.stderr)
            return 2
        variants.append("config")
    os.makedirs(args.out, exist_ok=True)
    runs = [(model, variant, seed) for model in args.models for variant in variants
            for seed in range(1, args.seeds + 1)]
    rows = []
    start = time.monotonic()
    # Runs are independent: one process each, `--jobs` at once (each single-threaded, so
    # that they do not compete for the cores).
    with concurrent.futures.ProcessPoolExecutor(max_workers=min(args.jobs, len(runs)),
                                                initializer=_single_threaded) as pool:
        futures = {pool.submit(_run, run, args): run for run in runs}
        for done, future in enumerate(concurrent.futures.as_completed(futures), start=1):
            model, variant, seed = futures[future]
            result = future.result()
            rows.extend(result)
            if not args.quiet:
                print(f"lptsim train-check: [{done}/{len(runs)}] {model} {variant} seed {seed}: test accuracy "
                      f"{100 * result[-1]['test_accuracy']:.1f}% ({time.monotonic() - start:.0f} s)",
                      file=sys.stderr, flush=True)
    rows.sort(key=lambda r: (args.models.index(r["model"]), variants.index(r["variant"]), r["seed"], r["epoch"]))
    summary = summarise(rows, args.models, variants)
    write_csv(os.path.join(args.out, "curves.csv"), rows)
    write_csv(os.path.join(args.out, "summary.csv"), summary)
    plot(rows, args.models, variants, args.out)
    print(f"test accuracy after {args.epochs} epochs, mean ± std over {args.seeds} seed(s) "
          f"({len(load_digits_split()[1])} test images):")
    for s in summary:
        description = VARIANTS[s["variant"]][0] if s["variant"] in VARIANTS else f"the policy of {args.config}"
        print(f"  {s['model']:4} {s['variant']:15} {100 * s['test_accuracy']:6.2f}% ± {100 * s['std']:4.2f}  "
              f"{s['points_vs_fp32']:+6.2f} points vs fp32   {description}")
    variant, reference, tolerance = CLAIM
    for model in args.models:
        found = {s["variant"]: s for s in summary if s["model"] == model}
        if variant in found and reference in found:
            delta = found[variant]["points_vs_fp32"]
            verdict = "holds" if delta >= -tolerance else "does not hold"
            print(f"claim ({model}): {variant} within {tolerance:g} point of {reference}: {verdict} "
                  f"({delta:+.2f} points)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
