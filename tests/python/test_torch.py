"""Tests of lptsim.torch: layers on a policy's datapaths, loss scaling, rounded updates.

Usage: test_torch.py LPTSIM_CLI SOURCE_DIR [TestClass ...], with PYTHONPATH at build/python.
Exits 77 (ctest: skipped) when NumPy or PyTorch is missing.
"""

import os
import sys
import unittest

SKIP = 77  # SKIP_RETURN_CODE in tests/CMakeLists.txt
try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:
    print(f"skipped: {sys.executable} cannot import {e.name} (Debian's python3-numpy, python3-torch)")
    sys.exit(SKIP)

import lptsim
import lptsim.torch as lt

LPTSIM = SOURCE = None


def config(name):
    return os.path.join(SOURCE, "configs", name)


def exact_policy(*overrides):
    """fp16-baseline (FP16 operands, FP32 accumulation in chunks of 64) with FP32 outputs.

    The exactness argument: every operand below is k/8 with |k| <= 16 (5 significant bits,
    exact in FP16), so a product is a multiple of 2^-6 below 4 and every partial sum of up to
    a few hundred of them is a multiple of 2^-6 below 2^10: 16 significant bits, exact in
    FP32's 24. Any power-of-two loss scale keeps that. So each GEMM on this datapath gives the
    exact result, which is also what float64 gives: torch.nn.functional in float64 is a
    reference to compare with equality.
    """
    outputs = [f'/precision/{phase}/output="fp32"' for phase in lptsim.PHASES]
    return lptsim.load_policy(config("fp16-baseline.json"), outputs + list(overrides))


def eighths(*shape, generator):
    return torch.randint(-16, 17, shape, generator=generator, dtype=torch.float64) / 8


class ExactLayers(unittest.TestCase):
    def check_layer(self, layer, reference, x, grad_y):
        x = x.clone().requires_grad_()
        y = layer(x)
        y.backward(grad_y)
        x_ref = x.detach().clone().requires_grad_()
        w_ref = layer.weight.detach().clone().requires_grad_()
        b_ref = layer.bias.detach().clone().requires_grad_()
        y_ref = reference(x_ref, w_ref, b_ref)
        y_ref.backward(grad_y)
        self.assertTrue(torch.equal(y, y_ref))
        self.assertTrue(torch.equal(x.grad, x_ref.grad))
        self.assertTrue(torch.equal(layer.weight.grad, w_ref.grad))
        self.assertTrue(torch.equal(layer.bias.grad, b_ref.grad))
        return y

    def test_linear_equals_float64(self):
        g = torch.Generator().manual_seed(1)
        for loss_scale in ('"dynamic"', "1", "1024"):
            with self.subTest(loss_scale=loss_scale):
                policy = exact_policy(f"/precision/loss_scale={loss_scale}")
                layer = lt.Linear(40, 24, policy=policy, dtype=torch.float64)
                with torch.no_grad():
                    layer.weight.copy_(eighths(24, 40, generator=g))
                    layer.bias.copy_(eighths(24, generator=g))
                x = eighths(3, 5, 40, generator=g)
                self.check_layer(layer, F.linear, x, eighths(3, 5, 24, generator=g))

    def test_conv2d_equals_float64(self):
        g = torch.Generator().manual_seed(2)
        policy = exact_policy()
        for kwargs in ({"stride": 1, "padding": 1}, {"stride": 2, "padding": 2, "dilation": 2, "groups": 2},
                       {"stride": (2, 1)}):
            with self.subTest(**kwargs):
                layer = lt.Conv2d(4, 6, 3, policy=policy, dtype=torch.float64, **kwargs)
                with torch.no_grad():
                    layer.weight.copy_(eighths(*layer.weight.shape, generator=g))
                    layer.bias.copy_(eighths(6, generator=g))
                x = eighths(2, 4, 9, 8, generator=g)

                def reference(x, w, b):
                    return F.conv2d(x, w, b, layer.stride, layer.padding, layer.dilation, layer.groups)

                out_shape = reference(x, layer.weight, layer.bias).shape
                self.check_layer(layer, reference, x, eighths(*out_shape, generator=g))

    def test_conv2d_padding_modes_and_same(self):
        g = torch.Generator().manual_seed(3)
        policy = exact_policy()
        for padding, mode in (("same", "zeros"), (1, "reflect"), (1, "circular")):
            with self.subTest(padding=padding, mode=mode):
                ours = lt.Conv2d(3, 5, 3, padding=padding, padding_mode=mode, policy=policy, dtype=torch.float64)
                theirs = torch.nn.Conv2d(3, 5, 3, padding=padding, padding_mode=mode, dtype=torch.float64)
                with torch.no_grad():
                    ours.weight.copy_(eighths(5, 3, 3, 3, generator=g))
                    theirs.weight.copy_(ours.weight)
                    theirs.bias.copy_(ours.bias)
                x = eighths(1, 3, 6, 7, generator=g)
                self.assertTrue(torch.equal(ours(x), theirs(x)))

    def test_float32_tensors_and_unbatched_input(self):
        g = torch.Generator().manual_seed(4)
        policy = exact_policy()
        layer = lt.Conv2d(2, 3, 2, policy=policy)
        with torch.no_grad():
            layer.weight.copy_(eighths(3, 2, 2, 2, generator=g))
            layer.bias.copy_(eighths(3, generator=g))
        x = eighths(2, 5, 5, generator=g).float()
        y = layer(x)
        self.assertEqual((y.dtype, tuple(y.shape)), (torch.float32, (3, 4, 4)))
        self.assertTrue(torch.equal(y.double(), F.conv2d(x.double(), layer.weight.double(), layer.bias.double())))


class LowPrecision(unittest.TestCase):
    def test_forward_is_the_policy_gemm(self):
        """rapid-4core's forward datapath has no stochastic stage: the layer's output is
        lptsim.gemm of its operands on it (plus the bias), for every position's formats."""
        policy = lptsim.load_policy(config("rapid-4core.json"))
        g = torch.Generator().manual_seed(5)
        x, w, b = torch.randn(6, 70, generator=g), torch.randn(10, 70, generator=g), torch.randn(10, generator=g)
        for position in lptsim.POSITIONS:
            y = lt.linear(x, w, b, policy, position)
            expected = lptsim.gemm(x, w.T.contiguous(), policy.datapath("fwd", position)) + b
            self.assertTrue(torch.equal(y, expected))
        self.assertFalse(torch.equal(lt.linear(x, w, b, policy, "middle"), lt.linear(x, w, b, policy, "first")))

    def test_gradients_are_close_and_deterministic(self):
        policy = lptsim.load_policy(config("rapid-4core.json"))

        def run(seed):
            torch.manual_seed(0)
            layer = lt.Linear(64, 32, policy=policy, seed=seed)
            x = torch.randn(16, 64, requires_grad=True)
            layer(x).square().sum().backward()
            return x.grad, layer.weight.grad, layer, x

        gx, gw, layer, x = run(1)
        gx2, gw2, _, _ = run(1)
        self.assertTrue(torch.equal(gx, gx2) and torch.equal(gw, gw2))
        x_ref = x.detach().double().requires_grad_()
        w_ref = layer.weight.detach().double().requires_grad_()
        F.linear(x_ref, w_ref, layer.bias.detach().double()).square().sum().backward()
        for ours, ref in ((gx, x_ref.grad), (gw, w_ref.grad)):
            relative = (ours.double() - ref).norm() / ref.norm()
            self.assertGreater(relative, 0)  # HFP8 is not exact...
            self.assertLess(relative, 0.15)  # ...but close

    def test_loss_scale_keeps_small_gradients(self):
        """Gradients of 2^-30 underflow FP16 (smallest 2^-24) unscaled; a static 2^20 or the
        dynamic scale keeps them, and the gradients autograd sees are unscaled."""
        x = torch.ones(4, 8, dtype=torch.float64, requires_grad=True)
        w = torch.ones(3, 8, dtype=torch.float64, requires_grad=True)
        grad_y = torch.full((4, 3), 2.0 ** -30, dtype=torch.float64)
        for loss_scale, expected in (("1", 0.0), ("1048576", 3 * 2.0 ** -30), ('"dynamic"', 3 * 2.0 ** -30)):
            with self.subTest(loss_scale=loss_scale):
                policy = exact_policy(f"/precision/loss_scale={loss_scale}")
                x.grad = w.grad = None
                lt.linear(x, w, None, policy).backward(grad_y)
                self.assertTrue(torch.all(x.grad == expected))
                self.assertTrue(torch.all(w.grad == expected / 3 * 4))

    def test_dynamic_scale_backs_off_when_the_result_overflows(self):
        """Gradient 1 scaled up to FP16's top (2^15) times weights 2^14 over 8 terms overflows
        an FP16 result; the scale halves until it fits, and the unscaled result is exact."""
        policy = lptsim.load_policy(config("fp16-baseline.json"))
        x = torch.ones(2, 4, dtype=torch.float64, requires_grad=True)
        w = torch.full((8, 4), 2.0 ** 14, dtype=torch.float64)
        lt.linear(x, w, None, policy).backward(torch.ones(2, 8, dtype=torch.float64))
        self.assertTrue(torch.all(x.grad == 8 * 2.0 ** 14))
        static = lptsim.load_policy(config("fp16-baseline.json"), ["/precision/loss_scale=32768"])
        x.grad = None
        lt.linear(x, w, None, static).backward(torch.ones(2, 8, dtype=torch.float64))
        self.assertTrue(torch.all(torch.isinf(x.grad)))

    def test_training_reduces_the_loss(self):
        policy = lptsim.load_policy(config("rapid-4core.json"))
        torch.manual_seed(0)
        model = torch.nn.Sequential(lt.Conv2d(1, 4, 3, padding=1, policy=policy, position="first"), torch.nn.ReLU(),
                                    torch.nn.Flatten(), lt.Linear(4 * 6 * 6, 2, policy=policy, position="last"))
        x = torch.randn(16, 1, 6, 6)
        target = (x.mean(dim=(1, 2, 3)) > 0).long()
        optimizer = lt.RoundedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), policy, seed=1)
        losses = []
        for _ in range(15):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), target)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        self.assertLess(losses[-1], 0.7 * losses[0])


class Optimizer(unittest.TestCase):
    def test_weights_and_momentum_are_rounded_stochastically(self):
        policy = lptsim.load_policy(config("rapid-4core.json"))
        dlfloat16 = policy.update.weights

        def step(seed):
            torch.manual_seed(0)
            layer = torch.nn.Linear(50, 20)
            optimizer = lt.RoundedOptimizer(torch.optim.SGD(layer.parameters(), lr=0.01, momentum=0.9), policy, seed)
            layer(torch.randn(8, 50)).sum().backward()
            optimizer.step()
            return layer, optimizer

        layer, optimizer = step(7)
        for p in layer.parameters():
            self.assertTrue(torch.equal(lptsim.quantize(p.detach(), dlfloat16, "rtz"), p.detach()))
            momentum = optimizer.state[p]["momentum_buffer"]
            self.assertTrue(torch.equal(lptsim.quantize(momentum, dlfloat16, "rtz"), momentum))
        self.assertTrue(torch.equal(step(7)[0].weight, layer.weight))
        self.assertFalse(torch.equal(step(8)[0].weight, layer.weight))
        self.assertEqual(len(optimizer.param_groups), 1)  # the wrapped optimizer's

    def test_adam_moments_are_rounded(self):
        policy = lptsim.load_policy(config("rapid-4core.json"), ['/precision/update/optimizer="adam"'])
        self.assertEqual(policy.update.optimizer, "adam")
        torch.manual_seed(0)
        layer = torch.nn.Linear(30, 10)
        optimizer = lt.RoundedOptimizer(torch.optim.Adam(layer.parameters(), lr=0.01), policy, seed=3)
        for _ in range(2):
            optimizer.zero_grad()
            layer(torch.randn(4, 30)).square().sum().backward()
            optimizer.step()
        state = optimizer.state[layer.weight]
        for key in ("exp_avg", "exp_avg_sq"):
            self.assertTrue(torch.equal(lptsim.quantize(state[key], policy.update.optimizer_state, "rtz"), state[key]))
        self.assertEqual(state["step"].item(), 2)  # not a tensor shaped like the weights: left alone

    def test_update_rounding_is_unbiased(self):
        """SR to DLFloat16 with the chip's 8 random bits: 1 + 2^-12 (1/8 of a gap) on average."""
        policy = lptsim.load_policy(config("rapid-4core.json"))
        p = torch.nn.Parameter(torch.full((100000,), 1.0, dtype=torch.float64))
        optimizer = lt.RoundedOptimizer(torch.optim.SGD([p], lr=1.0), policy, seed=2)
        p.grad = torch.full_like(p, -(2.0 ** -12))
        optimizer.step()
        self.assertEqual(set(p.detach().unique().tolist()), {1.0, 1 + 2.0 ** -9})
        self.assertLess(abs(p.detach().mean().item() - (1 + 2.0 ** -12)), 4 * 2.0 ** -9 * (0.11 / 1e5) ** 0.5)


class BadInput(unittest.TestCase):
    def test_messages(self):
        policy = lptsim.load_policy(config("rapid-4core.json"))
        with self.assertRaisesRegex(TypeError, "policy: expected an lptsim.Policy"):
            lt.Linear(4, 2, policy="rapid-4core")
        with self.assertRaisesRegex(ValueError, "unknown layer position 'top'; expected one of first, middle, last"):
            lt.Conv2d(1, 1, 3, policy=policy, position="top")
        with self.assertRaisesRegex(ValueError, r"x: expected shape \(\*, 4\) for a weight of shape \(2, 4\), "
                                                r"got \(3, 5\)"):
            lt.Linear(4, 2, policy=policy)(torch.ones(3, 5))
        with self.assertRaisesRegex(TypeError, "x: expected a floating-point tensor, got torch.int64"):
            lt.linear(torch.ones(3, 4, dtype=torch.int64), torch.ones(2, 4), None, policy)
        with self.assertRaisesRegex(ValueError, "expected x's channels = weight.shape.1. x groups"):
            lt.Conv2d(3, 4, 3, policy=policy)(torch.ones(1, 2, 5, 5))
        with self.assertRaisesRegex(TypeError, "expected a floating-point tensor, got torch.int32"):
            lptsim.quantize(torch.ones(3, dtype=torch.int32), "fp16")
        with self.assertRaisesRegex(ValueError, "has no update formats"):
            exact = lptsim.Datapath("fp16", "fp16", "fp32")
            lt.RoundedOptimizer(torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=1),
                                lptsim.Policy({"fwd": exact, "bwd": exact, "wgrad": exact}))

    def test_tensors_keep_their_kind(self):
        x = torch.linspace(-2, 2, 12).reshape(3, 4)
        q = lptsim.quantize(x, "hfp8_e4m3")
        self.assertEqual((type(q), q.dtype, q.shape), (torch.Tensor, torch.float32, x.shape))
        bits = lptsim.encode(x, "hfp8_e4m3")
        self.assertEqual(bits.dtype, torch.int64)
        self.assertTrue(torch.equal(lptsim.decode(bits, "hfp8_e4m3").float(), q))


if __name__ == "__main__":
    LPTSIM, SOURCE = sys.argv[1], sys.argv[2]
    unittest.main(argv=[sys.argv[0], *sys.argv[3:]], verbosity=2)
