"""lptsim's bit-exact low-precision numerics (models/numerics) from Python.

Formats, rounding, encode/decode, the MAC datapath's GEMM and a config's precision
policy, on NumPy arrays and PyTorch tensors. docs/python.md has examples;
lptsim.torch has layers and an optimizer wrapper on top of this.
"""

import math

import numpy as np

from . import _lptsim
from ._lptsim import Datapath, Format

__all__ = [
    "Datapath", "Format", "Policy", "Update", "decode", "encode", "formats", "gemm",
    "gemm_reference", "load_policy", "quantize", "PHASES", "POSITIONS", "ROUNDINGS",
]

ROUNDINGS = ("rne", "away", "rtz", "sr", "sr_exact")
PHASES = ("fwd", "bwd", "wgrad")
POSITIONS = ("first", "middle", "last")
# The widest random word a stochastic rounding consumes (lptsim numerics convert's default).
MAX_SR_BITS = 64
_FLOAT_DTYPES = (np.float16, np.float32, np.float64)


def _as_format(spec):
    return spec if isinstance(spec, Format) else Format(spec)


def formats():
    """Every preset format, in the order of `lptsim numerics formats`."""
    return [Format(name) for name in _lptsim.preset_names()]


def _is_torch(x):
    # torch is optional: only a tensor's own module tells whether one was passed.
    return type(x).__module__.startswith("torch")


def _float64(x, name):
    """x as a C-contiguous float64 NumPy array; a TypeError unless it holds floats."""
    if _is_torch(x):
        if not x.is_floating_point():
            raise TypeError(f"{name}: expected a floating-point tensor, got {x.dtype}")
        x = x.detach().to("cpu", dtype=_torch().float64).numpy()
    array = np.asarray(x)
    if array.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{name}: expected a float16, float32 or float64 array, got {array.dtype}")
    # (np.ascontiguousarray would make a 0-d array 1-d.)
    return np.asarray(array, dtype=np.float64, order="C")


def _torch():
    import torch
    return torch


def _like(values, x, name):
    """float64 `values` as the kind and dtype of x (an array or a tensor), refusing a narrowing
    that would round them a second time."""
    if _is_torch(x):
        out = _torch().from_numpy(values).to(device=x.device, dtype=x.dtype)
        narrowed = out.detach().to("cpu", dtype=_torch().float64).numpy()
    else:
        dtype = np.asarray(x).dtype
        out = values.astype(dtype)
        narrowed = out.astype(np.float64)
    if not np.array_equal(narrowed, values, equal_nan=True):
        raise ValueError(f"{name}: the result's values do not all fit {out.dtype}; pass float64 input")
    return out


def _rounding(rounding, fmt):
    if rounding is None:
        return fmt.default_rounding
    if rounding not in ROUNDINGS:
        raise ValueError(f"unknown rounding {rounding!r}; expected one of {', '.join(ROUNDINGS)}")
    return rounding


def _convert(x, fmt, rounding, seed, sr_bits, saturate):
    fmt = _as_format(fmt)
    values = _float64(x, "x")
    out_values, out_bits = _lptsim.convert(values.reshape(-1), fmt, _rounding(rounding, fmt), seed, sr_bits,
                                           saturate)
    return out_values.reshape(values.shape), out_bits.reshape(values.shape)


def quantize(x, format, rounding=None, seed=0, sr_bits=MAX_SR_BITS, saturate=False):
    """x rounded onto `format` (a Format, a preset name or a dict as in a config), as values of
    x's kind (NumPy array or tensor) and dtype.

    rounding: rne | away | rtz | sr | sr_exact, default the format's own. Stochastic roundings
    key element e (in C order) as CounterRandom(seed, 0).bits(e): deterministic for a seed,
    the same draws as `lptsim numerics convert --seed` gives its e-th line. sr_bits: the
    random bits of "sr" (1..64). saturate: overflow and +-Inf become +-max finite.
    """
    values, _ = _convert(x, format, rounding, seed, sr_bits, saturate)
    return _like(values, x, "quantize")


def encode(x, format, rounding=None, seed=0, sr_bits=MAX_SR_BITS, saturate=False):
    """x's bit patterns in `format` (as quantize rounds them): a uint32 array, or for a tensor an
    int64 tensor (torch has no uint32)."""
    _, bits = _convert(x, format, rounding, seed, sr_bits, saturate)
    if _is_torch(x):
        return _torch().from_numpy(bits.astype(np.int64)).to(x.device)
    return bits


def decode(bits, format):
    """The float64 values of bit patterns of `format` (a NumPy integer array or an integer tensor)."""
    fmt = _as_format(format)
    torch_input = _is_torch(bits)
    array = bits.detach().cpu().numpy() if torch_input else np.asarray(bits)
    if array.dtype.kind not in "ui":
        raise TypeError(f"bits: expected an unsigned integer (uint32) array, got {array.dtype}")
    if array.size and (array.min() < 0 or array.max() >= 2 ** fmt.bits):
        raise ValueError(f"bits: expected patterns of {fmt.bits} bits for {fmt.name!r} (0..{2 ** fmt.bits - 1})")
    values = _lptsim.decode(np.ascontiguousarray(array, dtype=np.uint32).reshape(-1), fmt).reshape(array.shape)
    return _torch().from_numpy(values).to(bits.device) if torch_input else values


def _gemm(a, b, datapath, reference):
    if not isinstance(datapath, Datapath):
        raise TypeError(f"datapath: expected an lptsim.Datapath, got {type(datapath).__name__}")
    a64, b64 = _float64(a, "a"), _float64(b, "b")
    for name, m in (("a", a64), ("b", b64)):
        if m.ndim != 2:
            raise ValueError(f"{name}: expected a 2-D matrix, got shape {tuple(m.shape)}")
    if a64.shape[1] != b64.shape[0]:
        raise ValueError(f"gemm: a is {a64.shape[0]} x {a64.shape[1]} and b is {b64.shape[0]} x {b64.shape[1]}; "
                         "expected a's columns to equal b's rows")
    c = _lptsim.gemm(a64, b64, datapath, reference)
    return _like(c, a, "gemm")


def gemm(a, b, datapath):
    """C = a @ b bit-exactly on the datapath (the library's fast path, num::gemm).

    a (M x K) and b (K x N) are first rounded onto the datapath's operand formats with their
    default rounding, so values already in those formats are taken as they are. The result
    holds values of the datapath's result format, as a's kind and dtype.
    """
    return _gemm(a, b, datapath, False)


def gemm_reference(a, b, datapath):
    """The same as gemm through num::gemm_reference: every add through the format codec (slow)."""
    return _gemm(a, b, datapath, True)


class Update:
    """How the optimizer writes weights and its state: formats, roundings and the rounder's bits."""

    def __init__(self, weights, optimizer_state=None, weights_rounding=None, state_rounding=None,
                 sr_bits=MAX_SR_BITS, optimizer="sgd_momentum"):
        self.weights = _as_format(weights)
        self.optimizer_state = _as_format(optimizer_state if optimizer_state is not None else weights)
        self.weights_rounding = _rounding(weights_rounding, self.weights)
        self.state_rounding = _rounding(state_rounding, self.optimizer_state)
        if not 1 <= sr_bits <= MAX_SR_BITS:
            raise ValueError(f"sr_bits: expected 1..{MAX_SR_BITS}, got {sr_bits}")
        self.sr_bits = sr_bits
        self.optimizer = optimizer

    def __repr__(self):
        return (f"lptsim.Update(weights={self.weights.name} ({self.weights_rounding}), "
                f"optimizer_state={self.optimizer_state.name} ({self.state_rounding}), sr_bits={self.sr_bits})")


def _check_loss_scale(loss_scale):
    if loss_scale == "dynamic":
        return loss_scale
    if isinstance(loss_scale, (int, float)) and loss_scale > 0 and math.isfinite(loss_scale):
        mantissa, _ = math.frexp(loss_scale)
        if mantissa == 0.5:
            return float(loss_scale)
    raise ValueError(f"loss_scale: expected \"dynamic\" or a positive power of two, got {loss_scale!r}")


class Policy:
    """A precision policy: the datapath of each (phase, layer position), the loss scale of error
    gradients and the update's formats.

    datapaths maps a phase ("fwd", "bwd", "wgrad") or a (phase, position) pair to a Datapath;
    a phase alone stands for every position, a pair overrides it. loss_scale: "dynamic" or a
    power of two. update: an Update, or None when weights are not rounded.
    """

    def __init__(self, datapaths, loss_scale="dynamic", update=None, name="", seed=0):
        self._datapaths = {}
        for key, datapath in datapaths.items():
            if not isinstance(datapath, Datapath):
                raise TypeError(f"datapaths[{key!r}]: expected an lptsim.Datapath, got {type(datapath).__name__}")
            phase, positions = (key, POSITIONS) if isinstance(key, str) else (key[0], (key[1],))
            _check_phase(phase)
            for position in positions:
                _check_position(position)
                if isinstance(key, str) and (phase, position) in self._datapaths:
                    continue  # a (phase, position) given beside its phase keeps its own
                self._datapaths[(phase, position)] = datapath
        missing = [f"{p}/{q}" for p in PHASES for q in POSITIONS if (p, q) not in self._datapaths]
        if missing:
            raise ValueError(f"datapaths: no datapath for {', '.join(missing)}; expected every phase "
                             f"({', '.join(PHASES)}) at every position ({', '.join(POSITIONS)})")
        self.loss_scale = _check_loss_scale(loss_scale)
        if update is not None and not isinstance(update, Update):
            raise TypeError(f"update: expected an lptsim.Update or None, got {type(update).__name__}")
        self.update = update
        self.name = name
        self.seed = seed

    def datapath(self, phase, position="middle"):
        _check_phase(phase)
        _check_position(position)
        return self._datapaths[(phase, position)]

    def __repr__(self):
        lines = [f"lptsim.Policy({self.name!r}, loss_scale={self.loss_scale!r}, update={self.update!r})"]
        lines += [f"  {p}/{q}: {self._datapaths[(p, q)]!r}" for p in PHASES for q in POSITIONS]
        return "\n".join(lines)


def _check_phase(phase):
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}; expected one of {', '.join(PHASES)}")


def _check_position(position):
    if position not in POSITIONS:
        raise ValueError(f"unknown layer position {position!r}; expected one of {', '.join(POSITIONS)}")


def load_policy(config_path, overrides=()):
    """The precision policy of an lptsim config, as the simulator resolves it.

    overrides: "/json/pointer=value" strings as `lptsim run --set` takes them. Each datapath is
    sim/gemm_datapath's gemm_numerics of the config's formats for that phase and position on
    its chip (chunk length, rounder bits), seeded with the config's fidelity seed. The update
    rounds with the chip's stochastic rounders ("sr" with its random bits) when the config says
    "stochastic", else with each format's own nearest rounding.
    """
    if isinstance(overrides, str):
        raise TypeError("overrides: expected a list of \"/pointer=value\" strings, got one string")
    raw = _lptsim.load_policy(str(config_path), list(overrides))
    u = raw["update"]
    update = Update(u["weights"], u["optimizer_state"], u["weights_rounding"], u["state_rounding"], u["sr_bits"],
                    u["optimizer"])
    return Policy(raw["datapaths"], raw["loss_scale"], update, raw["name"], raw["seed"])
