"""Tests of the Python module lptsim (python/lptsim) against the C++ codec and GEMM.

Usage: test_lptsim.py LPTSIM_CLI SOURCE_DIR [TestClass ...], with PYTHONPATH at build/python.
Exits 77 (ctest: skipped) when NumPy is missing.
"""

import json
import math
import os
import subprocess
import sys
import tempfile
import unittest

SKIP = 77  # SKIP_RETURN_CODE in tests/CMakeLists.txt
try:
    import numpy as np
except ImportError:
    print(f"skipped: {sys.executable} cannot import numpy (Debian's python3-numpy)")
    sys.exit(SKIP)

import lptsim

LPTSIM = SOURCE = None
SMALL_PRESETS = [f.name for f in lptsim.formats() if f.bits <= 8]


def convert_cli(values, fmt, *args):
    """`lptsim numerics convert --json` of each value: (bits, value) per line."""
    text = "".join(f"{v.hex() if isinstance(v, float) else v}\n" for v in values)
    out = subprocess.run([LPTSIM, "numerics", "convert", "--to", fmt, "--json", *args], input=text,
                         capture_output=True, text=True, check=True).stdout
    records = [json.loads(line) for line in out.splitlines()]
    return [int(r["bits"], 0) for r in records], [float.fromhex(r["value"]) if r["value"] not in
                                                   ("nan", "inf", "-inf") else float(r["value"])
                                                   for r in records]


class Formats(unittest.TestCase):
    def test_presets_and_properties(self):
        names = [f.name for f in lptsim.formats()]
        for name in ("fp8_e4m3", "hfp8_e4m3", "hfp8_e5m2", "dlfloat16", "fp16", "bf16", "fp32", "int4"):
            self.assertIn(name, names)
        fp16 = lptsim.Format("fp16")
        self.assertEqual((fp16.bits, fp16.exponent_bits, fp16.mantissa_bits, fp16.bias), (16, 5, 10, 15))
        self.assertEqual(fp16.max_finite, 65504)
        self.assertEqual(fp16.min_positive, 2.0 ** -24)
        self.assertTrue(fp16.has_infinity)
        e4m3 = lptsim.Format("fp8_e4m3")
        self.assertEqual((e4m3.max_finite, e4m3.specials, e4m3.has_infinity), (448, "fn", False))
        self.assertEqual(lptsim.Format("dlfloat16").default_rounding, "away")
        custom = lptsim.Format({"base": "fp8_e4m3", "overflow": "saturate"})
        self.assertEqual(custom.overflow, "saturate")
        self.assertEqual(lptsim.Format(json.loads(custom.descriptor())), custom)


class Codec(unittest.TestCase):
    def test_exhaustive_small_formats_round_trip(self):
        """Every pattern of every format of at most 8 bits decodes to a value that quantizes to
        itself and encodes back to the pattern (or, for codes sharing a value, one of equal value)."""
        for name in SMALL_PRESETS:
            with self.subTest(format=name):
                fmt = lptsim.Format(name)
                bits = np.arange(2 ** fmt.bits, dtype=np.uint32)
                values = lptsim.decode(bits, fmt)
                finite = ~np.isnan(values)
                self.assertTrue(np.array_equal(lptsim.quantize(values, fmt), values, equal_nan=True))
                again = lptsim.encode(values[finite], fmt)
                self.assertTrue(np.array_equal(lptsim.decode(again, fmt), values[finite]))
                distinct = np.signbit(values[finite]) | (values[finite] != 0)
                self.assertTrue(np.array_equal(again[distinct], bits[finite][distinct]))

    def test_agrees_with_the_cli_on_every_8_bit_pattern_and_midpoints(self):
        """Values, their midpoints and points beyond the range, in every rounding: the same bits
        and values as `lptsim numerics convert` (SR: the same draws for the same seed)."""
        for name in SMALL_PRESETS:
            fmt = lptsim.Format(name)
            values = np.unique(lptsim.decode(np.arange(2 ** fmt.bits, dtype=np.uint32), fmt))
            values = values[np.isfinite(values)]
            inputs = np.concatenate([values, (values[1:] + values[:-1]) / 2, values * 1.3 + 2.0 ** -20,
                                     [fmt.max_finite * 4, -fmt.max_finite * 4, np.inf, np.nan]])
            for rounding in lptsim.ROUNDINGS:
                with self.subTest(format=name, rounding=rounding):
                    bits, cli_values = convert_cli([float(x) for x in inputs], name, "--round", rounding,
                                                   "--seed", "11", "--sr-bits", "5")
                    ours = lptsim.encode(inputs, fmt, rounding, seed=11, sr_bits=5)
                    self.assertEqual(ours.tolist(), bits)
                    self.assertTrue(np.array_equal(lptsim.quantize(inputs, fmt, rounding, seed=11, sr_bits=5),
                                                   np.array(cli_values), equal_nan=True))

    def test_saturate_matches_the_cli(self):
        inputs = [1e6, -1e6, math.inf, -math.inf, 3.0]
        for name in ("fp16", "fp8_e4m3", "int8"):
            _, cli_values = convert_cli(inputs, name, "--saturate")
            self.assertEqual(lptsim.quantize(np.array(inputs), name, saturate=True).tolist(), cli_values)

    def test_shapes_dtypes_and_kinds(self):
        x = np.linspace(-3, 3, 24, dtype=np.float32).reshape(2, 3, 4)
        q = lptsim.quantize(x, "fp8_e4m3")
        self.assertEqual((q.shape, q.dtype), (x.shape, np.float32))
        self.assertTrue(np.array_equal(q, lptsim.quantize(x.astype(np.float64).ravel(), "fp8_e4m3").reshape(x.shape)))
        self.assertEqual(lptsim.encode(x, "fp16").dtype, np.uint32)
        self.assertEqual(lptsim.quantize(np.float64(0.3), "bf16").shape, ())
        # A result the input's dtype cannot hold is refused, not rounded a second time.
        wide = lptsim.Datapath("fp32", "fp32", {"name": "e6m25", "exponent_bits": 6, "mantissa_bits": 25})
        a = np.array([[1, 2.0 ** -25]], dtype=np.float32)
        self.assertEqual(lptsim.gemm(a.astype(np.float64), np.ones((2, 1)), wide)[0, 0], 1 + 2.0 ** -25)
        with self.assertRaisesRegex(ValueError, "gemm: the result's values do not all fit float32; pass float64"):
            lptsim.gemm(a, np.ones((2, 1)), wide)

    def test_stochastic_rounding_is_unbiased_and_deterministic(self):
        x = np.full(200000, 0.3)
        for rounding, bits in (("sr", 64), ("sr_exact", 64), ("sr", 12)):
            q = lptsim.quantize(x, "fp8_e4m3", rounding, seed=3, sr_bits=bits)
            self.assertEqual(set(np.unique(q)), {0.28125, 0.3125})  # the neighbours of 0.3
            # 0.3 is 0.6 of a gap above 0.28125: mean = 0.3 up to 4 standard errors (and the
            # 12-bit rounder's bias below 2^-12 of a gap).
            self.assertLess(abs(q.mean() - 0.3), 4 * 0.03125 * math.sqrt(0.24 / x.size) + 0.03125 * 2.0 ** -12)
            self.assertTrue(np.array_equal(q, lptsim.quantize(x, "fp8_e4m3", rounding, seed=3, sr_bits=bits)))
            self.assertFalse(np.array_equal(q, lptsim.quantize(x, "fp8_e4m3", rounding, seed=4, sr_bits=bits)))

    def test_bad_input(self):
        with self.assertRaisesRegex(ValueError, 'unknown format "fp7"; expected one of .*fp8_e4m3'):
            lptsim.quantize(np.ones(2), "fp7")
        with self.assertRaisesRegex(TypeError, "expected a float16, float32 or float64 array, got int64"):
            lptsim.quantize(np.ones(2, dtype=np.int64), "fp16")
        with self.assertRaisesRegex(ValueError, "unknown rounding 'nearest'; expected one of rne, away"):
            lptsim.quantize(np.ones(2), "fp16", "nearest")
        with self.assertRaisesRegex(ValueError, "sr_bits: expected 1..64"):
            lptsim.quantize(np.ones(2), "fp16", "sr", sr_bits=0)
        with self.assertRaisesRegex(ValueError, "expected patterns of 8 bits"):
            lptsim.decode(np.array([256], dtype=np.uint32), "fp8_e4m3")
        with self.assertRaisesRegex(TypeError, "expected an unsigned integer"):
            lptsim.decode(np.ones(2), "fp8_e4m3")
        with self.assertRaisesRegex(ValueError, "mantissa_bits"):
            lptsim.Format({"base": "fp16", "mantissa_bits": -1})


def datapaths():
    """Datapaths of every kind the fast GEMM has: float and double lanes, chunked, stochastic
    stages (fall back to the reference), an output conversion, integers."""
    return {
        "hfp8_chunked_dlfloat16": lptsim.Datapath("hfp8_e4m3", "hfp8_e4m3", "dlfloat16", chunk_length=64,
                                                  output="dlfloat16"),
        "fp8_fp16_plain": lptsim.Datapath("fp8_e5m2", "fp8_e4m3", "fp16"),
        "fp8_fp16_chunk16_sr": lptsim.Datapath("fp8_e5m2", "fp8_e4m3", "fp16", chunk_length=16, rounding="sr",
                                               stochastic_bits=8, output="fp16", output_rounding="sr", seed=5),
        "sr_exact_inner": lptsim.Datapath("hfp8_e5m2", "hfp8_e4m3", "fp16", chunk_length=8, inner_rounding="sr_exact",
                                          seed=9),
        "bf16_fp32_rtz": lptsim.Datapath("bf16", "bf16", "fp32", rounding="rtz", output="bf16"),
        "int8_int4_fp32": lptsim.Datapath("int8", "int4", "fp32", chunk_length=32),
    }


class Gemm(unittest.TestCase):
    def test_fast_path_equals_the_reference_bit_for_bit(self):
        rng = np.random.default_rng(1)
        for name, datapath in datapaths().items():
            for m, k, n in ((3, 5, 4), (17, 300, 9), (1, 1000, 33)):
                with self.subTest(datapath=name, shape=(m, k, n)):
                    scale = 4.0 if datapath.a.is_integer else 1.0
                    a, b = rng.normal(0, scale, (m, k)), rng.normal(0, scale, (k, n))
                    fast = lptsim.gemm(a, b, datapath)
                    self.assertEqual(fast.shape, (m, n))
                    self.assertTrue(np.array_equal(fast, lptsim.gemm_reference(a, b, datapath), equal_nan=True))
                    # Every result is a value of the result format.
                    self.assertTrue(np.array_equal(lptsim.quantize(fast, datapath.result_format, "rtz"), fast,
                                                   equal_nan=True))

    def test_operands_are_quantized_first_and_results_are_deterministic(self):
        datapath = datapaths()["fp8_fp16_chunk16_sr"]
        rng = np.random.default_rng(2)
        a, b = rng.normal(size=(8, 64)), rng.normal(size=(64, 8))
        qa, qb = lptsim.quantize(a, datapath.a), lptsim.quantize(b, datapath.b)
        self.assertTrue(np.array_equal(lptsim.gemm(a, b, datapath), lptsim.gemm(qa, qb, datapath)))
        self.assertFalse(np.array_equal(lptsim.gemm(a, b, datapath), lptsim.gemm(a, b, datapath.with_seed(6))))

    def test_hand_computed(self):
        # FP16 holds 2048 and then only even integers: 2048 + 1 ties back to 2048 (even), so a
        # plain running sum swamps every 1; chunks of two sum [2048, 1] -> 2048, [1, 1] -> 2,
        # [1] -> 1, merged 2048 + 2 = 2050, 2050 + 1 = 2051 -> 2052 (the even neighbour).
        a = np.array([[2048.0, 1, 1, 1, 1]])
        b = np.ones((5, 1))
        plain = lptsim.Datapath("fp16", "fp16", "fp16")
        chunked = lptsim.Datapath("fp16", "fp16", "fp16", chunk_length=2)
        self.assertEqual(lptsim.gemm(a, b, plain)[0, 0], 2048)
        self.assertEqual(lptsim.gemm(a, b, chunked)[0, 0], 2052)
        self.assertEqual(lptsim.gemm(a, b, lptsim.Datapath("fp16", "fp16", "fp32"))[0, 0], 2052)
        self.assertEqual(lptsim.gemm(a, b, lptsim.Datapath("fp16", "fp16", "fp16", rounding="rtz"))[0, 0], 2048)
        # Operands round onto fp8_e4m3 first (0.3 -> 0.3125, 0.1 -> 0.1015625), products exact,
        # one add in fp32: 0.3125 * 2 + 0.1015625 * 4 = 1.03125.
        e4m3 = lptsim.Datapath("fp8_e4m3", "fp8_e4m3", "fp32")
        self.assertEqual(lptsim.gemm(np.array([[0.3, 0.1]]), np.array([[2.0], [4.0]]), e4m3)[0, 0], 1.03125)

    def test_float32_operands_give_float32(self):
        a = np.ones((2, 3), dtype=np.float32)
        c = lptsim.gemm(a, np.ones((3, 2)), lptsim.Datapath("fp16", "fp16", "fp32"))
        self.assertEqual((c.dtype, c.tolist()), (np.float32, [[3, 3], [3, 3]]))

    def test_bad_input(self):
        d = lptsim.Datapath("fp16", "fp16", "fp32")
        with self.assertRaisesRegex(ValueError, "a is 2 x 3 and b is 4 x 2; expected a's columns to equal b's rows"):
            lptsim.gemm(np.ones((2, 3)), np.ones((4, 2)), d)
        with self.assertRaisesRegex(ValueError, r"a: expected a 2-D matrix, got shape \(3,\)"):
            lptsim.gemm(np.ones(3), np.ones((3, 2)), d)
        with self.assertRaisesRegex(TypeError, "b: expected a float16, float32 or float64 array, got int32"):
            lptsim.gemm(np.ones((2, 3)), np.ones((3, 2), dtype=np.int32), d)
        with self.assertRaisesRegex(TypeError, "expected an lptsim.Datapath"):
            lptsim.gemm(np.ones((2, 3)), np.ones((3, 2)), "fp16")
        with self.assertRaisesRegex(ValueError, 'accumulator: unknown format "fp17"; expected one of'):
            lptsim.Datapath("fp16", "fp16", "fp17")
        with self.assertRaisesRegex(ValueError, 'unknown rounding "up"; expected one of rne, away, rtz, sr, sr_exact'):
            lptsim.Datapath("fp16", "fp16", "fp32", rounding="up")
        with self.assertRaisesRegex(ValueError, "chunk_length must be >= 0"):
            lptsim.Datapath("fp16", "fp16", "fp32", chunk_length=-1)
        with self.assertRaisesRegex(ValueError, 'stochastic rounding into "fp32" needs 1..28 random bits, got 40'):
            lptsim.Datapath("fp16", "fp16", "fp32", rounding="sr", stochastic_bits=40)
        with self.assertRaisesRegex(ValueError, "output_rounding is set but there is no output format"):
            lptsim.Datapath("fp16", "fp16", "fp32", output_rounding="rne")
        with self.assertRaisesRegex(ValueError, "expected a format name, a dict describing a format"):
            lptsim.Datapath("fp16", 16, "fp32")


class Policies(unittest.TestCase):
    def config(self, name):
        return os.path.join(SOURCE, "configs", name)

    def test_rapid_4core(self):
        policy = lptsim.load_policy(self.config("rapid-4core.json"))
        self.assertEqual(policy.name, "rapid-4core")
        fwd = policy.datapath("fwd")
        self.assertEqual((fwd.a.name, fwd.b.name, fwd.accumulator.name, fwd.output.name),
                         ("hfp8_e4m3", "hfp8_e4m3", "dlfloat16", "dlfloat16"))
        self.assertEqual((fwd.chunk_length, fwd.stochastic_bits, fwd.inner_rounding), (64, 8, "away"))
        bwd, wgrad = policy.datapath("bwd", "middle"), policy.datapath("wgrad", "middle")
        self.assertEqual((bwd.a.name, bwd.b.name), ("hfp8_e5m2", "hfp8_e4m3"))
        self.assertEqual((wgrad.a.name, wgrad.b.name), ("hfp8_e4m3", "hfp8_e5m2"))
        for phase in lptsim.PHASES:
            for position in ("first", "last"):
                self.assertEqual(policy.datapath(phase, position).a.name, "dlfloat16")
        self.assertEqual(policy.loss_scale, "dynamic")
        u = policy.update
        self.assertEqual((u.weights.name, u.optimizer_state.name, u.weights_rounding, u.state_rounding, u.sr_bits),
                         ("dlfloat16", "dlfloat16", "sr", "sr", 8))

    def test_datapaths_are_the_simulators(self):
        """Every GEMM the simulator's fidelity pass ran on tiny-cnn names the datapath that
        load_policy gives for its phase and its layer's position (first and last layers with
        GEMMs have their own formats in tiny.json)."""
        with tempfile.TemporaryDirectory() as out:
            subprocess.run([LPTSIM, "run", "--quiet", "--config", self.config("tiny.json"), "--trace",
                            os.path.join(SOURCE, "traces", "tiny-cnn.json"), "--out", out], check=True)
            with open(os.path.join(out, "report.json")) as f:
                gemms = json.load(f)["fidelity"]["gemms"]
        layers = list(dict.fromkeys(g["layer"] for g in gemms))
        policy = lptsim.load_policy(self.config("tiny.json"))
        seen = set()
        for g in gemms:
            position = "first" if g["layer"] == layers[0] else "last" if g["layer"] == layers[-1] else "middle"
            d = policy.datapath(g["phase"], position)
            label = f"{d.a.name} x {d.b.name} -> {d.accumulator.name}"
            if d.chunk_length > 1:
                label += f" (chunk {d.chunk_length})"
            if d.output is not None and d.output.name != d.accumulator.name:
                label += f" -> {d.output.name}"
            self.assertEqual(g["datapath"], label, g)
            seen.add((g["phase"], position))
        # Every phase at every position, but the first layer's data gradient (nothing needs it).
        self.assertEqual(seen, {(p, q) for p in lptsim.PHASES for q in lptsim.POSITIONS} - {("bwd", "first")})

    def test_overrides_and_nearest_update(self):
        policy = lptsim.load_policy(self.config("fp16-baseline.json"),
                                    ["/precision/loss_scale=1024", "/chip/core/accumulator/chunk_length=16",
                                     '/precision/fwd/accumulation_rounding="rtz"'])
        self.assertEqual(policy.loss_scale, 1024.0)
        self.assertEqual(policy.datapath("bwd").chunk_length, 16)
        self.assertEqual(policy.datapath("fwd").inner_rounding, "rtz")
        self.assertEqual(policy.datapath("bwd").inner_rounding, "rne")
        self.assertEqual((policy.update.weights.name, policy.update.weights_rounding), ("fp32", "rne"))

    def test_policy_from_datapaths(self):
        exact = lptsim.Datapath("fp16", "fp16", "fp32")
        hfp8 = lptsim.Datapath("hfp8_e4m3", "hfp8_e4m3", "dlfloat16")
        policy = lptsim.Policy({"fwd": hfp8, "bwd": exact, "wgrad": exact, ("fwd", "first"): exact}, loss_scale=8)
        self.assertIs(policy.datapath("fwd", "first"), exact)
        self.assertIs(policy.datapath("fwd", "last"), hfp8)
        with self.assertRaisesRegex(ValueError, "no datapath for wgrad/first, wgrad/middle, wgrad/last"):
            lptsim.Policy({"fwd": exact, "bwd": exact})
        with self.assertRaisesRegex(ValueError, "expected \"dynamic\" or a positive power of two, got 3"):
            lptsim.Policy({"fwd": exact, "bwd": exact, "wgrad": exact}, loss_scale=3)

    def test_bad_input(self):
        with self.assertRaisesRegex(ValueError, "no-such.json"):
            lptsim.load_policy(self.config("no-such.json"))
        with self.assertRaisesRegex(ValueError, "/precision/fwd/a"):
            lptsim.load_policy(self.config("rapid-4core.json"), ['/precision/fwd/a="fp7"'])
        with self.assertRaisesRegex(ValueError, "/precision/nothing/here"):
            lptsim.load_policy(self.config("rapid-4core.json"), ["/precision/nothing/here=1"])
        with self.assertRaisesRegex(TypeError, "expected a list"):
            lptsim.load_policy(self.config("rapid-4core.json"), "/precision/loss_scale=2")
        policy = lptsim.load_policy(self.config("rapid-4core.json"))
        with self.assertRaisesRegex(ValueError, "unknown phase 'forward'; expected one of fwd, bwd, wgrad"):
            policy.datapath("forward")
        with self.assertRaisesRegex(ValueError, "unknown layer position 'top'; expected one of first, middle, last"):
            policy.datapath("fwd", "top")


if __name__ == "__main__":
    LPTSIM, SOURCE = sys.argv[1], sys.argv[2]
    unittest.main(argv=[sys.argv[0], *sys.argv[3:]], verbosity=2)
