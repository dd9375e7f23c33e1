"""PyTorch layers whose GEMMs run bit-exactly on an lptsim precision policy.

Linear and Conv2d (drop-in for torch.nn's, plus policy=, position=, seed=) and their
functional forms run three GEMMs per layer, each on the policy's datapath for its phase
and the layer's position, the same pairing of operands the simulator's workload uses:
  fwd    Y  = X . W^T      (A: activations, B: weights)
  bwd    dX = dY . W       (A: error gradients, B: weights)
  wgrad  dW = (X^T . dY)^T (A: activations, B: error gradients)
A convolution is the GEMM of its im2col columns (torch's unfold): the columns of dX that
the bwd GEMM gives are summed back onto the input by unfold's own backward (fold), in the
tensor's dtype, outside the datapath, as is the bias (added and reduced in float).

Error gradients are multiplied by the policy's loss scale before they are rounded onto
their operand format and the GEMM's result is divided by it again (both exact: powers of
two), per GEMM, as sim/fidelity does: a static factor, or "dynamic", the largest power of
two that keeps the gradient within the operand format, halved while the result overflows
its format. The gradients autograd sees are therefore unscaled.

RoundedOptimizer wraps a torch optimizer and rounds the weights and the optimizer's state
onto the policy's update formats after every step (stochastically in rapid-4core.json).
"""

import math

import numpy as np
import torch
import torch.nn.functional as F

import lptsim

__all__ = ["Conv2d", "Linear", "RoundedOptimizer", "conv2d", "linear"]

_MASK64 = (1 << 64) - 1
_PHASE_STREAMS = {"fwd": 1, "bwd": 2, "wgrad": 3}


def _mix(*values):
    """A 64-bit seed from integers (SplitMix64 steps), so that each layer, call and phase
    keys its own stochastic roundings."""
    h = 0
    for v in values:
        h = (h + (v & _MASK64) + 0x9E3779B97F4A7C15) & _MASK64
        h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _MASK64
        h ^= h >> 31
    return h


def _check_policy(policy, position):
    if not isinstance(policy, lptsim.Policy):
        raise TypeError(f"policy: expected an lptsim.Policy (lptsim.load_policy), got {type(policy).__name__}")
    policy.datapath("fwd", position)  # a ValueError naming the positions if it is not one


def _scaled_gemm(a, b, datapath, gradient_operand, loss_scale):
    """a @ b on the datapath (float64 NumPy), the loss scale applied to the gradient operand."""
    if gradient_operand is None:
        return lptsim.gemm(a, b, datapath)
    gradient = a if gradient_operand == "a" else b
    operand_format = datapath.a if gradient_operand == "a" else datapath.b
    largest = float(np.max(np.abs(gradient))) if gradient.size else 0.0
    dynamic = loss_scale == "dynamic"
    if not dynamic:
        scale = loss_scale
    elif largest == 0 or not math.isfinite(largest):
        scale = 1.0  # nothing to fit, or nothing a scale could fit
    else:
        # In logs, so that a tiny gradient cannot make the quotient infinite (capped where
        # double still holds the scale); one halving undoes the logs' rounding at a boundary.
        operand_limit = operand_format.max_finite
        scale = math.ldexp(1.0, min(math.floor(math.log2(operand_limit) - math.log2(largest)), 1023))
        if largest * scale > operand_limit:
            scale /= 2
    result_limit = datapath.result_format.max_finite
    for attempt in range(64):
        scaled_a, scaled_b = (a * scale, b) if gradient_operand == "a" else (a, b * scale)
        result = lptsim.gemm(scaled_a, scaled_b, datapath)
        overflowed = not np.all(np.abs(result) < result_limit)  # NaN and Inf included
        if not (dynamic and overflowed and math.isfinite(largest)) or attempt == 63:
            return result / scale
        scale /= 2  # as dynamic loss scaling backs off after an overflowed step


def _numpy(t):
    return t.detach().to("cpu", dtype=torch.float64).numpy()


class _PolicyGemm(torch.autograd.Function):
    """Y = X . W^T for X (M x K) and W (N x K), with the three GEMMs on the policy."""

    @staticmethod
    def forward(ctx, x, weight, policy, position, seed):
        ctx.save_for_backward(x, weight)
        ctx.policy, ctx.position, ctx.seed = policy, position, seed
        datapath = policy.datapath("fwd", position).with_seed(_mix(seed, _PHASE_STREAMS["fwd"]))
        return lptsim._like(lptsim.gemm(_numpy(x), _numpy(weight).T, datapath), x, "forward")

    @staticmethod
    def backward(ctx, grad_y):
        x, weight = ctx.saved_tensors
        policy, position, seed = ctx.policy, ctx.position, ctx.seed
        dy = _numpy(grad_y)
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            datapath = policy.datapath("bwd", position).with_seed(_mix(seed, _PHASE_STREAMS["bwd"]))
            grad_x = lptsim._like(_scaled_gemm(dy, _numpy(weight), datapath, "a", policy.loss_scale), x, "bwd")
        if ctx.needs_input_grad[1]:
            datapath = policy.datapath("wgrad", position).with_seed(_mix(seed, _PHASE_STREAMS["wgrad"]))
            grad_w = _scaled_gemm(_numpy(x).T, dy, datapath, "b", policy.loss_scale)
            grad_w = lptsim._like(np.ascontiguousarray(grad_w.T), weight, "wgrad")
        return grad_x, grad_w, None, None, None


def linear(x, weight, bias=None, policy=None, position="middle", seed=0):
    """torch.nn.functional.linear on the policy's datapaths (x: (*, in), weight: (out, in))."""
    _check_policy(policy, position)
    if weight.dim() != 2:
        raise ValueError(f"weight: expected (out_features, in_features), got shape {tuple(weight.shape)}")
    if x.dim() < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"x: expected shape (*, {weight.shape[1]}) for a weight of shape {tuple(weight.shape)}, "
                         f"got {tuple(x.shape)}")
    for name, t in (("x", x), ("weight", weight)):
        if not t.is_floating_point():
            raise TypeError(f"{name}: expected a floating-point tensor, got {t.dtype}")
    y = _PolicyGemm.apply(x.reshape(-1, x.shape[-1]), weight, policy, position, seed)
    y = y.reshape(*x.shape[:-1], weight.shape[0])
    return y if bias is None else y + bias


def _pair(value, name):
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) for v in pair):
        raise ValueError(f"{name}: expected an int or a pair of ints, got {value!r}")
    return pair


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, policy=None, position="middle",
           seed=0):
    """torch.nn.functional.conv2d (zero padding given as ints) as the GEMM of im2col columns,
    per group, on the policy's datapaths. x: (N, C, H, W) or (C, H, W)."""
    _check_policy(policy, position)
    if x.dim() == 3:
        return conv2d(x.unsqueeze(0), weight, bias, stride, padding, dilation, groups, policy, position, seed)[0]
    if x.dim() != 4 or weight.dim() != 4:
        raise ValueError(f"conv2d: expected x (N, C, H, W) and weight (out, in/groups, kH, kW), got shapes "
                         f"{tuple(x.shape)} and {tuple(weight.shape)}")
    stride, padding, dilation = _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation")
    out_channels, group_channels, kh, kw = weight.shape
    if groups < 1 or x.shape[1] != group_channels * groups or out_channels % groups:
        raise ValueError(f"conv2d: x has {x.shape[1]} channels and weight shape {tuple(weight.shape)} with "
                         f"groups={groups}; expected x's channels = weight.shape[1] x groups and out channels "
                         f"divisible by groups")
    n, _, h, w = x.shape
    out_h = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    out_w = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    if out_h < 1 or out_w < 1:
        raise ValueError(f"conv2d: a {kh}x{kw} kernel (dilation {dilation}, padding {padding}) does not fit "
                         f"an input of {h}x{w}")
    # (N, C*kh*kw, L) -> per group an (N*L) x (C/groups*kh*kw) matrix: one GEMM row per output pixel.
    columns = F.unfold(x, (kh, kw), dilation=dilation, padding=padding, stride=stride)
    columns = columns.transpose(1, 2).reshape(n * out_h * out_w, groups, group_channels * kh * kw)
    out_per_group = out_channels // groups
    outputs = []
    for g in range(groups):
        weight_g = weight[g * out_per_group:(g + 1) * out_per_group].reshape(out_per_group, -1)
        outputs.append(_PolicyGemm.apply(columns[:, g], weight_g, policy, position, _mix(seed, g)))
    y = torch.cat(outputs, dim=1).reshape(n, out_h, out_w, out_channels).permute(0, 3, 1, 2)
    return y if bias is None else y + bias.reshape(1, -1, 1, 1)


class _PolicyLayer:
    """What Linear and Conv2d share: the policy, the position and a seed per forward call."""

    def _init_policy(self, policy, position, seed):
        _check_policy(policy, position)
        self.policy, self.position, self.seed = policy, position, seed
        self.calls = 0

    def _call_seed(self):
        # Every forward pass (and its backward) draws fresh stochastic roundings.
        self.calls += 1
        return _mix(self.seed, self.calls)

    def extra_repr(self):
        return f"{super().extra_repr()}, policy={self.policy.name!r}, position={self.position!r}"


class Linear(_PolicyLayer, torch.nn.Linear):
    """torch.nn.Linear whose GEMMs run on `policy` (lptsim.Policy) at layer `position`."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None, *, policy,
                 position="middle", seed=0):
        super().__init__(in_features, out_features, bias, device, dtype)
        self._init_policy(policy, position, seed)

    def forward(self, x):
        return linear(x, self.weight, self.bias, self.policy, self.position, self._call_seed())


class Conv2d(_PolicyLayer, torch.nn.Conv2d):
    """torch.nn.Conv2d whose GEMMs run on `policy` (lptsim.Policy) at layer `position`."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None, *, policy, position="middle", seed=0):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device, dtype)
        self._init_policy(policy, position, seed)

    def forward(self, x):
        padding = self.padding
        # "same" and non-zero padding modes pad first, as torch.nn.Conv2d does.
        if self.padding_mode != "zeros" or isinstance(padding, str):
            mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
            x = F.pad(x, self._reversed_padding_repeated_twice, mode=mode)
            padding = 0
        return conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups, self.policy,
                      self.position, self._call_seed())


class RoundedOptimizer:
    """A torch optimizer whose step() ends by rounding every parameter onto the policy's
    update weight format and every floating-point tensor of its state (momentum, Adam
    moments) onto the optimizer-state format, with the update's roundings; stochastic draws
    are keyed by (seed, step, parameter, state entry). Everything else is the optimizer's."""

    def __init__(self, optimizer, policy, seed=0):
        if not isinstance(policy, lptsim.Policy):
            raise TypeError(f"policy: expected an lptsim.Policy, got {type(policy).__name__}")
        if policy.update is None:
            raise ValueError("policy: it has no update formats (lptsim.Update) to round to")
        self.optimizer, self.policy, self.seed = optimizer, policy, seed
        self.steps = 0

    def __getattr__(self, name):
        return getattr(self.optimizer, name)

    @torch.no_grad()
    def step(self, closure=None):
        loss = self.optimizer.step(closure)
        self.steps += 1
        u = self.policy.update
        index = 0
        for group in self.optimizer.param_groups:
            for p in group["params"]:
                index += 1
                p.copy_(lptsim.quantize(p, u.weights, u.weights_rounding, _mix(self.seed, self.steps, index, 0),
                                        u.sr_bits))
                state = self.optimizer.state.get(p, {})
                for entry, (key, value) in enumerate(sorted(state.items()), start=1):
                    if torch.is_tensor(value) and value.is_floating_point() and value.shape == p.shape:
                        value.copy_(lptsim.quantize(value, u.optimizer_state, u.state_rounding,
                                                    _mix(self.seed, self.steps, index, entry), u.sr_bits))
        return loss
