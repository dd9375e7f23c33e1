#!/usr/bin/env python3
"""System tests: run the lptsim CLI on small configs/traces and check its reports.

Usage: test_cli.py LPTSIM_BINARY SOURCE_DIR TEST_NAME   (ctest runs one test per process)
"""
import csv
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

LPTSIM = None
SOURCE = None


def run(*args, expect=0):
    env = dict(os.environ, SYSTEMC_DISABLE_COPYRIGHT_MESSAGE="1")
    p = subprocess.run([LPTSIM, *args], capture_output=True, text=True, env=env, timeout=600)
    if p.returncode != expect:
        raise AssertionError(f"lptsim {' '.join(args)} exited {p.returncode}, expected {expect}\n"
                             f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def report_value(report, pointer):
    """The value at a JSON pointer of a report."""
    value = report
    for part in pointer.strip("/").split("/"):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def tiny_config(**changes):
    """tiny.json with `changes` applied: keys are JSON paths like 'chip/dram/latency_ns'."""
    with open(os.path.join(SOURCE, "configs", "tiny.json")) as f:
        config = json.load(f)
    with open(os.path.join(SOURCE, "configs", config["chip"])) as f:
        config["chip"] = json.load(f)  # inline the chip description, to edit it
    with open(os.path.join(SOURCE, "configs", config["chip"]["energy"])) as f:
        config["chip"]["energy"] = json.load(f)  # and its energy table
    for path, value in changes.items():
        node = config
        *parents, leaf = path.split("/")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return config


def unbounded(config):
    """Makes every bandwidth and latency effectively free and the SFU and rounders wide."""
    chip = config["chip"]
    chip["dram"].update(gb_per_s_per_channel=1e9, latency_ns=0)
    chip["interconnect"].update(link_bytes_per_cycle=1 << 36, hop_latency_cycles=0)
    chip["core"]["scratchpad"]["bytes_per_cycle_per_port"] = 1 << 36
    chip["core"]["sfu"]["lanes"] = 1 << 20
    chip["core"]["rounder"]["lanes"] = 1 << 20
    return config


class Cli(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def write_config(self, config, name="config.json"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            json.dump(config, f)
        return path

    def simulate(self, config_path, trace, *extra, out="out"):
        out_dir = os.path.join(self.dir, out)
        run("run", "--config", config_path, "--trace", trace, "--out", out_dir, "--quiet", *extra)
        with open(os.path.join(out_dir, "report.json")) as f:
            report = json.load(f)
        with open(os.path.join(out_dir, "layers.csv")) as f:
            rows = list(csv.DictReader(f))
        return report, rows

    def sweep_records(self, spec, jobs=2):
        """Runs a sweep of `spec` with `jobs` workers: its output directory and its results."""
        spec_file = os.path.join(self.dir, "spec.json")
        with open(spec_file, "w") as f:
            json.dump(spec, f)
        out = os.path.join(self.dir, "sweep")
        run("sweep", spec_file, "--out", out, "-j", str(jobs))
        with open(os.path.join(out, "results.jsonl")) as f:
            return out, [json.loads(line) for line in f]

    def trace(self, name):
        for folder in ("traces", "tests/system/data"):
            path = os.path.join(SOURCE, folder, name)
            if os.path.exists(path):
                return path
        raise FileNotFoundError(name)

    # --- fidelity ---
    def test_fidelity_in_the_report_csv_and_summary(self):
        """Every GEMM's datapath measured against FP64; --no-fidelity skips it; a threshold flags layers."""
        config = os.path.join(SOURCE, "configs", "tiny.json")
        trace = self.trace("tiny-cnn.json")
        report, rows = self.simulate(config, trace)
        fidelity = report["fidelity"]
        self.assertEqual(fidelity["sampled_outputs_per_gemm"], 16)
        gemm_types = ("conv2d", "depthwise_conv2d", "linear", "matmul", "lstm")
        gemm_rows = [r for r in rows if r["type"] in gemm_types and r["phase"] != "update" and not r["fused_into"]]
        self.assertTrue(gemm_rows)
        for row in gemm_rows:  # the CSV and the JSON rows carry the same figures
            self.assertGreater(float(row["sqnr_db"]), 10, row["layer"])
            self.assertLess(float(row["relative_l2_error"]), 0.3, row["layer"])
        for row in rows:
            if row["type"] not in gemm_types or row["phase"] == "update":
                self.assertEqual(row["sqnr_db"], "", row["layer"])
        for layer in report["layers"]:
            if "fidelity" in layer:
                self.assertAlmostEqual(float(next(r for r in rows if r["layer"] == layer["layer"] and
                                                  r["phase"] == layer["phase"])["sqnr_db"]),
                                       layer["fidelity"]["sqnr_db"], places=3)
        worst = min(l["fidelity"]["sqnr_db"] for l in report["layers"] if "fidelity" in l)
        self.assertAlmostEqual(fidelity["worst_sqnr_db"], worst)
        self.assertEqual(fidelity["flagged"], [])
        # A threshold above the worst layer flags it, in the summary too.
        flagged = run("run", "--config", config, "--trace", trace, "--out", os.path.join(self.dir, "flag"),
                      "--set", f"/fidelity/min_sqnr_db={worst + 1}").stdout
        self.assertIn("below", flagged)
        self.assertIn(fidelity["worst"]["layer"], flagged)
        with open(os.path.join(self.dir, "flag", "report.json")) as f:
            self.assertIn({"layer": fidelity["worst"]["layer"], "phase": fidelity["worst"]["phase"],
                           "sqnr_db": worst, "why": f"{worst:.1f} dB"}, json.load(f)["fidelity"]["flagged"])
        # Results that are NaN or overflowed flag a layer whatever its SQNR: a static loss scale far
        # too large overflows the weight gradients.
        overflowed = run("run", "--config", config, "--trace", trace, "--out", os.path.join(self.dir, "nan"),
                         "--set", "/precision/loss_scale=1073741824").stdout
        self.assertIn("overflowed", overflowed)
        # Skipped: no section, empty columns, the same timing.
        skipped, skipped_rows = self.simulate(config, trace, "--no-fidelity", out="skipped")
        self.assertIsNone(skipped["fidelity"])
        self.assertTrue(all(r["sqnr_db"] == "" for r in skipped_rows))
        self.assertEqual(skipped["totals"]["cycles"], report["totals"]["cycles"])

    def test_fidelity_values_from_the_trace_and_bad_npy_files(self):
        with open(self.trace("tiny-cnn.json")) as f:
            trace = json.load(f)
        gemm_layer = next(i for i, l in enumerate(trace["layers"]) if l["type"] in ("conv2d", "linear"))
        trace["layers"][gemm_layer]["fidelity"] = {"weights": {"npy": "weights.npy"}}
        trace_file = os.path.join(self.dir, "trace.json")
        with open(trace_file, "w") as f:
            json.dump(trace, f)
        with open(os.path.join(self.dir, "weights.npy"), "wb") as f:
            f.write(b"not a numpy file")
        config = os.path.join(SOURCE, "configs", "tiny.json")
        p = run("run", "--config", config, "--trace", trace_file, "--out", os.path.join(self.dir, "o"), expect=2)
        self.assertIn(f"trace.json: /layers/{gemm_layer}/fidelity/weights/npy", p.stderr)
        self.assertIn("weights.npy", p.stderr)
        # A real .npy (version 1.0, float32) of the layer's weights is drawn from; one of another
        # shape is an error that says what was expected.
        layer = trace["layers"][gemm_layer]
        weights = layer["out_channels"] * layer["input"][0] * layer["kernel"][0] * layer["kernel"][1]

        def write_npy(count):
            header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({count},), }}".encode()
            header += b" " * (64 - 10 - 1 - len(header)) + b"\n"
            with open(os.path.join(self.dir, "weights.npy"), "wb") as f:
                f.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header)
                f.write(bytes.fromhex("0000803f000000bf0000803e000000c0") * (count // 4))  # 1, -0.5, 0.25, -2

        write_npy(weights + 4)
        p = run("run", "--config", config, "--trace", trace_file, "--out", os.path.join(self.dir, "o"), expect=2)
        self.assertIn(f"has shape ({weights + 4},)", p.stderr)
        self.assertIn(f"expected the layer's weights, out_channels x in_channels/groups x kh x kw: {weights} elements",
                      p.stderr)
        write_npy(weights)
        report, _ = self.simulate(config, trace_file)
        measured = [g for g in report["fidelity"]["gemms"] if g["layer"] == trace["layers"][gemm_layer]["name"]]
        self.assertTrue(measured)
        self.assertTrue(any(g["b_values"] == "weights.npy (trace)" for g in measured), measured)

    # --- reports ---
    def test_report_files_and_accounting(self):
        report, rows = self.simulate(os.path.join(SOURCE, "configs", "tiny.json"), self.trace("tiny-cnn.json"))
        self.assertEqual(report["tool"]["name"], "lptsim")
        self.assertEqual(report["workload"]["network"], "tiny-cnn")
        self.assertEqual(report["config"]["name"], "tiny")
        self.assertEqual(report["workload"]["phases"], ["fwd", "bwd", "wgrad", "update"])
        totals = report["totals"]
        self.assertGreater(totals["cycles"], 0)
        self.assertGreater(totals["macs"], 0)
        self.assertLessEqual(totals["achieved_tflops"], totals["peak_tflops"] * 1.0001)
        # busy + stalls == cycles in every row (means over cores)
        for layer in report["layers"]:
            parts = layer["busy_cycles"] + sum(layer["stall_cycles"].values())
            self.assertAlmostEqual(parts, layer["cycles"], delta=1e-6 * layer["cycles"] + 1,
                                   msg=f"{layer['layer']}/{layer['phase']}")
        self.assertEqual(sum(l["cycles"] for l in report["layers"]), totals["cycles"])
        self.assertEqual(len(rows), len(report["layers"]))
        self.assertTrue(os.path.exists(os.path.join(self.dir, "out", "phases.csv")))
        # the first layer has no backward-data row
        self.assertNotIn(("conv1", "bwd"), {(l["layer"], l["phase"]) for l in report["layers"]})

    # --- systems of chips ---
    def system_config(self, chips=4, topology="ring", **data_parallel):
        config = tiny_config()
        config["system"] = {"chips": chips, "topology": topology,
                            "link": {"gb_per_s": 25, "latency_ns": 500, "pj_per_bit": 5}}
        if data_parallel:
            config["data_parallel"] = data_parallel
        return config

    def test_data_parallel_fidelity_measures_the_all_reduce(self):
        """A system of chips: its gradient all-reduce measured against FP64, flagged by the threshold; CLT-k's steps."""
        trace = self.trace("tiny-cnn.json")
        with open(trace) as f:
            batch = str(4 * json.load(f)["batch"])
        config = self.write_config(self.system_config(gradient_format="fp32"))
        out = os.path.join(self.dir, "dense")
        summary = run("run", "--config", config, "--trace", trace, "--out", out, "--batch", batch).stdout
        with open(os.path.join(out, "report.json")) as f:
            allreduce = json.load(f)["fidelity"]["allreduce"]
        self.assertEqual(allreduce["workers"], 4)
        self.assertEqual(allreduce["elements"], 1 << 18)  # fidelity/allreduce_elements' default
        self.assertEqual(allreduce["assumed_correlation"], 0.5)
        self.assertEqual(allreduce["communication_format"], "fp32")
        self.assertEqual(allreduce["accumulator"], "dlfloat16")  # tiny.json's wgrad accumulator
        self.assertEqual(allreduce["order"], "ring")
        for key in ("sqnr_db", "quantization_sqnr_db", "reduction_sqnr_db"):
            self.assertIsInstance(allreduce[key], float, key)  # null if not finite
            self.assertTrue(math.isfinite(allreduce[key]), key)
        self.assertGreater(allreduce["relative_l2_error"], 0)
        self.assertNotIn("compression", allreduce)
        self.assertIn("gradient all-reduce", summary)
        # A threshold above its SQNR flags it as its own entry.
        flagged = run("run", "--config", config, "--trace", trace, "--out", os.path.join(self.dir, "flag"),
                      "--batch", batch, "--set", f"/fidelity/min_sqnr_db={allreduce['sqnr_db'] + 1}").stdout
        self.assertIn("gradient all-reduce (", flagged)
        with open(os.path.join(self.dir, "flag", "report.json")) as f:
            self.assertIn({"layer": "gradient all-reduce", "phase": "allreduce", "sqnr_db": allreduce["sqnr_db"],
                           "why": f"{allreduce['sqnr_db']:.1f} dB"}, json.load(f)["fidelity"]["flagged"])
        # CLT-k compression: its steps, k and top-k overlap.
        config = self.write_config(self.system_config(compression={"ratio": 50}), "compressed.json")
        report, _ = self.simulate(config, trace, "--batch", batch, "--set", "/fidelity/compression_steps=3",
                                  "--set", "/fidelity/allreduce_elements=65536", out="compressed")
        allreduce = report["fidelity"]["allreduce"]
        self.assertEqual(allreduce["communication_format"], "dlfloat16")  # the wgrad output
        self.assertTrue(math.isfinite(allreduce["sqnr_db"]))
        compression = allreduce["compression"]
        self.assertEqual(compression["ratio"], 50)
        self.assertEqual(compression["k"], 65536 // 50)
        self.assertEqual([s["step"] for s in compression["steps"]], [0, 1, 2])
        self.assertEqual([s["leader"] for s in compression["steps"]], [0, 1, 2])
        for step in compression["steps"]:
            self.assertTrue(0 <= step["topk_overlap"] <= 1)
            self.assertGreater(step["relative_l2_error"], 0)  # most of each step's values are not sent
        self.assertTrue(math.isfinite(compression["cumulative_relative_l2_error"]))
        self.assertTrue(0 <= compression["topk_overlap"] <= 1)

    def test_data_parallel_run_reports_its_all_reduce(self):
        trace = self.trace("tiny-cnn.json")
        with open(trace) as f:
            batch = json.load(f)["batch"]
        config = self.write_config(self.system_config(bucket_mib=0.01, gradient_format="fp32"))
        report, rows = self.simulate(config, trace, "--no-fidelity", "--batch", str(4 * batch))
        system = report["system"]
        self.assertEqual(system["chips"], 4)
        self.assertEqual(system["global_batch"], 4 * batch)
        self.assertEqual(system["batch_per_chip"], batch)
        self.assertEqual(report["workload"]["batch"], 4 * batch)
        self.assertIn("allreduce", report["workload"]["phases"])
        allreduce = system["allreduce"]
        # Every layer with weights is in exactly one bucket, whole, in fp32.
        layers = [l for c in allreduce["collectives"] for l in c["layers"]]
        self.assertEqual(len(layers), len(set(layers)))
        self.assertGreater(len(allreduce["collectives"]), 1)
        self.assertEqual(allreduce["bytes_per_chip"], 4 * sum(l["elements"] for l in allreduce["layers"]))
        # A ring of 4 sends 2 x 3/4 of each bucket over the links.
        for c in allreduce["collectives"]:
            self.assertAlmostEqual(c["bytes_sent_to_other_chips"], 1.5 * c["bytes"], delta=16)
            self.assertEqual(c["rounds"], 6)
            self.assertGreaterEqual(c["cycles"], c["exposed_cycles"])
        self.assertEqual(allreduce["exposed_cycles"], sum(c["exposed_cycles"] for c in allreduce["collectives"]))
        # The allreduce rows carry the exposed part; busy + stalls == cycles still holds.
        phase_rows = [l for l in report["layers"] if l["phase"] == "allreduce"]
        self.assertEqual(sum(l["cycles"] for l in phase_rows), allreduce["exposed_cycles"])
        # On a ring every message crosses one link; each bit of it costs pj_per_bit.
        byte_hops = sum(l["bytes"]["link_byte_hops"] for l in phase_rows)
        self.assertEqual(byte_hops, allreduce["bytes_sent_to_other_chips"])
        self.assertAlmostEqual(report["totals"]["energy"]["dynamic_pj"]["links"], byte_hops * 8 * 5, delta=1e-6 * byte_hops)
        for layer in report["layers"]:
            parts = layer["busy_cycles"] + sum(layer["stall_cycles"].values())
            self.assertAlmostEqual(parts, layer["cycles"], delta=1e-6 * layer["cycles"] + 1)
        self.assertEqual(sum(l["cycles"] for l in report["layers"]), report["totals"]["cycles"])
        # The same chip alone at its share of the batch is no slower.
        alone, _ = self.simulate(os.path.join(SOURCE, "configs", "tiny.json"), trace, "--no-fidelity", out="alone")
        self.assertLessEqual(alone["totals"]["cycles"], report["totals"]["cycles"])
        self.assertEqual(alone["workload"]["batch"], batch)

    def test_buckets_compression_and_scaling(self):
        """Small buckets start their all-reduce earlier than one bucket of everything; CLT-k sends k values and
        k indices and is compared with the dense all-reduce; scaling is against one chip at the whole batch."""
        trace = self.trace("tiny-cnn.json")
        with open(trace) as f:
            batch = str(4 * json.load(f)["batch"])
        starts = {}
        for name, mib in (("small", 0.001), ("one", 1024)):
            config = self.write_config(self.system_config(bucket_mib=mib), f"{name}.json")
            report, _ = self.simulate(config, trace, "--no-fidelity", "--batch", batch, out=name)
            collectives = report["system"]["allreduce"]["collectives"]
            starts[name] = min(c["start_cycle"] for c in collectives)
            self.assertEqual(len(collectives) == 1, name == "one")
            scaling = report["system"]["scaling"]
            self.assertAlmostEqual(scaling["speedup"], scaling["one_chip_cycles"] / report["totals"]["cycles"])
            self.assertAlmostEqual(scaling["efficiency"], scaling["speedup"] / 4)
            self.assertGreater(scaling["efficiency"], 0)
        self.assertLess(starts["small"], starts["one"])
        # The one-chip reference is the same run on one chip at the whole batch.
        alone, _ = self.simulate(os.path.join(SOURCE, "configs", "tiny.json"), trace, "--no-fidelity", "--batch", batch,
                                 out="alone")
        self.assertEqual(alone["totals"]["cycles"], report["system"]["scaling"]["one_chip_cycles"])

        ratio = 16
        config = self.write_config(self.system_config(bucket_mib=1024, gradient_format="fp32",
                                                      compression={"ratio": ratio}), "cltk.json")
        report, _ = self.simulate(config, trace, "--no-fidelity", "--batch", batch, out="cltk")
        allreduce = report["system"]["allreduce"]
        (bucket,) = allreduce["collectives"]
        k = bucket["elements"] // ratio
        self.assertEqual(bucket["sent_elements"], k)
        # A ring of 4 all-reduces k fp32 values (2 x 3/4 of them sent) and forwards k 32-bit indices once.
        self.assertAlmostEqual(bucket["bytes_sent_to_other_chips"], 1.5 * 4 * k + 4 * k, delta=16)
        compression = allreduce["compression"]
        self.assertEqual(compression["ratio"], ratio)
        dense, _ = self.simulate(self.write_config(self.system_config(bucket_mib=1024, gradient_format="fp32"),
                                                   "dense.json"), trace, "--no-fidelity", "--batch", batch, out="dense")
        self.assertEqual(compression["dense_step_cycles"], dense["totals"]["cycles"])
        self.assertEqual(compression["dense_bytes_sent_to_other_chips"],
                         dense["system"]["allreduce"]["bytes_sent_to_other_chips"])
        self.assertGreater(compression["bytes_saved"], 0)
        self.assertGreater(compression["extra_sfu_ops"], 0)  # selection and memory update
        # Without reference runs, neither section's comparison is there.
        report, _ = self.simulate(config, trace, "--no-fidelity", "--batch", batch, "--no-reference-runs", out="bare")
        self.assertNotIn("scaling", report["system"])
        self.assertNotIn("dense_step_cycles", report["system"]["allreduce"]["compression"])

    def expect_input_errors(self, trace, cases):
        """Each (config, extra arguments, JSON path, fragment) fails with exit 2, naming its file and path."""
        for config, extra, path, fragment in cases:
            config_file = self.write_config(config)
            err = run("run", "--config", config_file, "--trace", trace, "--no-fidelity", *extra,
                      "--out", os.path.join(self.dir, "o"), expect=2).stderr
            self.assertIn(config_file, err)
            self.assertIn(path, err)
            self.assertIn(fragment, err)

    def test_system_input_errors_name_the_place(self):
        trace = self.trace("tiny-cnn.json")
        cases = [
            (self.system_config(chips=3), ["--batch", "4"], "/system/chips", "cannot split a batch of 4"),
            (self.system_config(topology="torus2d"), [], "/system/topology", "torus_shape"),
            (dict(self.system_config(topology="torus2d"), system=dict(self.system_config()["system"],
                  topology="torus2d", torus_shape=[2, 3])), [], "/system/torus_shape", "4 chips"),
            (self.system_config(gradient_format="int8"), [], "/data_parallel/gradient_format",
             "cannot all-reduce gradients"),
            (self.system_config(algorithm="hierarchical"), [], "/data_parallel/group_chips", "groups of chips"),
            (self.system_config(algorithm="ring", group_chips=2), [], "/data_parallel/group_chips", "groups"),
            (dict(tiny_config(), data_parallel={"algorithm": "ring"}), [], "/data_parallel", "needs a \"system\""),
            (self.system_config(algorithm="butterfly"), [], "/data_parallel/algorithm", "ring"),
        ]
        self.expect_input_errors(trace, cases)

    def test_optimizers_report_their_phases_schedule_and_memory(self):
        trace = self.trace("tiny-cnn.json")
        tiny = os.path.join(SOURCE, "configs", "tiny.json")
        kfac = '{"name": "kfac", "factor_interval": 2, "inverse_interval": 4, "newton_schulz_iterations": 3}'
        report, rows = self.simulate(tiny, trace, "--no-fidelity", "--set", f"/precision/update/optimizer={kfac}")
        for phase in ("curvature", "inverse", "precondition"):
            self.assertIn(phase, report["workload"]["phases"])
            self.assertGreater(report["phases"][phase]["cycles"], 0)
            self.assertTrue(any(r["phase"] == phase for r in rows))
        optimizer = report["optimizer"]
        self.assertEqual(optimizer["optimizer"]["inverse_interval"], 4)
        # Steps 0, 4, 8, ...: both; 2, 6, ...: factors only; odd steps: neither.
        schedule = {tuple(k["skipped_phases"]): k for k in optimizer["schedule"]}
        self.assertEqual(set(schedule), {(), ("inverse",), ("curvature", "inverse")})
        self.assertAlmostEqual(schedule[()]["share_of_steps"], 0.25)
        self.assertAlmostEqual(schedule[("inverse",)]["share_of_steps"], 0.25)
        self.assertAlmostEqual(schedule[("curvature", "inverse")]["share_of_steps"], 0.5)
        self.assertEqual(schedule[()]["cycles"], report["totals"]["cycles"])
        self.assertLess(schedule[("curvature", "inverse")]["cycles"], schedule[("inverse",)]["cycles"])
        self.assertLess(schedule[("inverse",)]["cycles"], schedule[()]["cycles"])
        mean = sum(k["share_of_steps"] * k["cycles"] for k in optimizer["schedule"])
        self.assertAlmostEqual(optimizer["mean_step"]["cycles"], mean, delta=1e-6 * mean)
        # SGD-momentum on the same chip: faster, and without curvature in memory.
        sgd, _ = self.simulate(tiny, trace, "--no-fidelity", out="sgd")
        self.assertEqual(optimizer["sgd_momentum"]["cycles"], sgd["totals"]["cycles"])
        self.assertLess(sgd["totals"]["cycles"], optimizer["mean_step"]["cycles"])
        self.assertEqual(optimizer["sgd_momentum"]["memory"], {k: v for k, v in sgd["optimizer"]["memory"].items()
                                                              if k in optimizer["sgd_momentum"]["memory"]})
        self.assertGreater(optimizer["memory"]["curvature_bytes"], 0)
        self.assertEqual(sgd["optimizer"]["memory"]["curvature_bytes"], 0)
        self.assertEqual(optimizer["memory"]["total_bytes"] - optimizer["memory"]["curvature_bytes"],
                         sgd["optimizer"]["memory"]["total_bytes"])

        # The fidelity pass measures the factors' GEMMs and the Newton–Schulz inverse on its datapath.
        out = os.path.join(self.dir, "kfac-fidelity")
        summary = run("run", "--config", tiny, "--trace", trace, "--out", out, "--set",
                      f"/precision/update/optimizer={kfac}", "--set", "/fidelity/inverse_dimension=16").stdout
        with open(os.path.join(out, "report.json")) as f:
            fidelity = json.load(f)["fidelity"]
        inverse = fidelity["kfac_inverse"]
        self.assertEqual(inverse["dimension"], 16)
        self.assertEqual(len(inverse["residual"]), 3)
        self.assertEqual(len(inverse["fp64_residual"]), 3)
        self.assertIn("K-FAC inverse", summary)
        self.assertTrue(any(g["phase"] == "curvature" for g in fidelity["gemms"]))

        # AdaHessian: a second backward pass as long as the first's GEMMs.
        ada, _ = self.simulate(tiny, trace, "--no-fidelity", "--set", "/precision/update/optimizer=adahessian",
                               out="ada")
        self.assertIn("hessian", ada["workload"]["phases"])
        hessian_macs = ada["phases"]["hessian"]["macs"]
        self.assertEqual(hessian_macs, ada["phases"]["bwd"]["macs"] + ada["phases"]["wgrad"]["macs"])

        # ESGD: a generation is μ·K steps and μ evaluations (forward only), plus selection's copies.
        esgd = ('{"name": "esgd", "population": 3, "offspring": 2, "steps_per_generation": 5, '
                '"evaluation_batch": 2}')
        e, _ = self.simulate(tiny, trace, "--no-fidelity", "--set", f"/precision/update/optimizer={esgd}", out="esgd")
        clock = e["config"]["chip"]["clock_ghz"] * 1e9
        generation = e["optimizer"]["generation"][0]
        evaluation = e["optimizer"]["evaluation"]["cycles"]
        self.assertGreater(evaluation, 0)
        self.assertLess(evaluation, e["totals"]["cycles"])
        # μ·K steps and μ + λ evaluations.
        self.assertAlmostEqual(generation["compute_seconds"], (3 * 5 * e["totals"]["cycles"] + 5 * evaluation) / clock,
                               delta=1e-9)
        self.assertEqual(generation["individuals_per_chip"], 3)
        # Each individual and its back-off copy, and each offspring, hold weights.
        self.assertEqual(e["optimizer"]["memory"]["weights_bytes"], 8 * sgd["optimizer"]["memory"]["weights_bytes"])

    def test_what_does_not_fit_is_spilled_to_host_memory(self):
        trace = self.trace("tiny-cnn.json")
        kfac = {"name": "kfac", "factor_interval": 1, "inverse_interval": 1, "newton_schulz_iterations": 2}
        fits = tiny_config(**{"precision/update/optimizer": kfac})
        fits["chip"]["host_link"] = {"gb_per_s": 0.5, "latency_ns": 1000, "pj_per_bit": 10}
        report, _ = self.simulate(self.write_config(fits, "fits.json"), trace, "--no-fidelity", out="fits")
        memory = report["optimizer"]["memory"]
        self.assertEqual(memory["spilled_to_host_bytes"], 0)
        self.assertNotIn("spill", report["workload"]["phases"])
        # A DRAM a little smaller than the footprint: the excess of the state and curvature is spilled.
        total = memory["total_bytes"]
        spilled = dict(fits, spill_to_host=True)
        spilled["chip"] = dict(fits["chip"], dram=dict(fits["chip"]["dram"], capacity_gib=(total - 4096) / 2**30))
        s, rows = self.simulate(self.write_config(spilled, "spilled.json"), trace, "--no-fidelity", out="spilled")
        m = s["optimizer"]["memory"]
        self.assertGreaterEqual(m["spilled_to_host_bytes"], 4096)
        self.assertLessEqual(m["spilled_to_host_bytes"], 4097)
        moved = m["host_bytes_moved_each_way_per_step"]
        self.assertGreaterEqual(moved, m["spilled_to_host_bytes"])  # factors, inverses and state are used every step
        self.assertIn("spill", s["workload"]["phases"])
        self.assertEqual(s["totals"]["bytes"]["host_read"], moved)
        self.assertEqual(s["totals"]["bytes"]["host_write"], moved)
        # Over the host link: no faster than its bandwidth, and slower than the step that fits.
        clock = s["config"]["chip"]["clock_ghz"]
        self.assertGreaterEqual(s["phases"]["spill"]["cycles"], 2 * moved / (0.5 / clock))
        self.assertGreater(s["totals"]["cycles"], report["totals"]["cycles"])
        self.assertAlmostEqual(s["totals"]["energy"]["dynamic_pj"]["links"], 2 * moved * 8 * 10, delta=1e-6 * moved)
        # Without spilling, the same DRAM is an error; spilling needs a host link.
        err = run("run", "--config", self.write_config(dict(spilled, spill_to_host=False), "nospill.json"),
                  "--trace", trace, "--no-fidelity", "--out", os.path.join(self.dir, "o"), expect=2).stderr
        self.assertIn("spill_to_host", err)
        no_link = dict(spilled)
        no_link["chip"] = {k: v for k, v in spilled["chip"].items() if k != "host_link"}
        err = run("run", "--config", self.write_config(no_link, "nolink.json"), "--trace", trace, "--no-fidelity",
                  "--out", os.path.join(self.dir, "o"), expect=2).stderr
        self.assertIn("/spill_to_host", err)
        self.assertIn("host_link", err)

    def test_optimizer_input_errors_name_the_place(self):
        trace = self.trace("tiny-cnn.json")
        cases = [
            (tiny_config(**{"precision/update/optimizer": {"name": "kfac", "factor_interval": 0}}), [],
             "/precision/update/optimizer/factor_interval", "expected an integer in [1, 100000]"),
            (tiny_config(**{"precision/update/optimizer": "lbfgs"}), [], "/precision/update/optimizer", "adahessian"),
            (tiny_config(**{"precision/update/optimizer": {"name": "esgd", "mutation": 1}}), [],
             "/precision/update/optimizer/mutation", "unknown key"),
            (tiny_config(**{"chip/dram/capacity_gib": 0.001}), ["--batch", "4096"], "/dram/capacity_gib",
             "GiB more than"),
            (tiny_config(**{"chip/dram/capacity_gib": -1}), [], "/chip/dram/capacity_gib", "expected a number"),
            (dict(self.system_config(), precision=dict(tiny_config()["precision"], update=dict(
                tiny_config()["precision"]["update"], optimizer={"name": "kfac", "grad_worker_fraction": 0.3}))),
             [], "/precision/update/optimizer/grad_worker_fraction", "whole number"),
        ]
        self.expect_input_errors(trace, cases)

    def check_golden(self, golden_name, *extra):
        # Timing and energy are exact; the fidelity figures go through the C library's
        # log, cos and exp, whose last bits may differ between machines, so they are
        # checked with tolerances elsewhere.
        self.simulate(os.path.join(SOURCE, "configs", "tiny.json"), self.trace("tiny-cnn.json"), "--no-fidelity",
                      *extra)
        for table in ("layers", "phases"):
            with open(os.path.join(self.dir, "out", f"{table}.csv")) as f:
                produced = f.read()
            with open(os.path.join(SOURCE, "tests", "system", "golden", f"{golden_name}.{table}.csv")) as f:
                golden = f.read()
            self.assertEqual(produced, golden, f"{golden_name}.{table}.csv differs from the golden file "
                             "(run scripts/update_goldens.sh if the change is intended)")

    def test_golden_tiny_cnn_reports(self):
        """Exact regression check; scripts/update_goldens.sh regenerates after intended changes."""
        self.check_golden("tiny-cnn")

    def test_golden_tiny_cnn_fused_reports(self):
        self.check_golden("tiny-cnn-fused", "--fusion", "full")

    def test_fusion_cuts_traffic_and_keeps_every_layer(self):
        trace = os.path.join(SOURCE, "traces", "resnet18.json")
        config = os.path.join(SOURCE, "configs", "rapid-4core.json")
        unfused, _ = self.simulate(config, trace, "--fusion", "none", "--phases", "fwd,bwd,wgrad")
        fused, _ = self.simulate(config, trace, "--phases", "fwd,bwd,wgrad")  # the config's: full
        self.assertEqual(fused["config"]["fusion"], "full")
        self.assertEqual(fused["totals"]["macs"], unfused["totals"]["macs"])
        traffic = lambda r: r["totals"]["bytes"]["dram_read"] + r["totals"]["bytes"]["dram_write"]
        self.assertLess(traffic(fused), 0.6 * traffic(unfused))
        self.assertLess(fused["totals"]["cycles"], unfused["totals"]["cycles"])
        layers = lambda r: {l["layer_index"] for l in r["layers"]}
        self.assertEqual(layers(fused), layers(unfused))
        fused_rows = [l for l in fused["layers"] if l["fused_into"]]
        self.assertTrue(fused_rows)
        self.assertTrue(all(l["cycles"] == 0 for l in fused_rows))

    def test_residency_keeps_results_on_chip(self):
        """Results kept in the scratchpads are read there, not from DRAM; the work is the same."""
        config = os.path.join(SOURCE, "configs", "tiny.json")
        plain, _ = self.simulate(config, self.trace("tiny-cnn.json"), "--fusion", "full", out="plain")
        kept, rows = self.simulate(config, self.trace("tiny-cnn.json"), "--fusion", "full",
                                   "--residency", "liveness", out="kept")
        self.assertEqual(plain["config"]["residency"], "none")
        self.assertEqual(kept["config"]["residency"], "liveness")
        self.assertEqual(kept["totals"]["macs"], plain["totals"]["macs"])
        bytes_of = lambda r: r["totals"]["bytes"]
        self.assertEqual(bytes_of(plain)["on_chip_read"], 0)
        self.assertGreater(bytes_of(kept)["on_chip_read"], 0)
        self.assertGreater(bytes_of(kept)["dram_write_avoided"], 0)
        # Every byte read on chip or never written is a DRAM byte saved.
        self.assertEqual(bytes_of(kept)["dram_read"] + bytes_of(kept)["on_chip_read"], bytes_of(plain)["dram_read"])
        self.assertEqual(bytes_of(kept)["dram_write"] + bytes_of(kept)["dram_write_avoided"],
                         bytes_of(plain)["dram_write"])
        self.assertLessEqual(kept["totals"]["cycles"], plain["totals"]["cycles"] * 1.01)
        self.assertLess(kept["totals"]["bound"]["dram_bytes"], plain["totals"]["bound"]["dram_bytes"])
        self.assertEqual(sum(int(r["on_chip_read_bytes"]) for r in rows), bytes_of(kept)["on_chip_read"])
        err = run("run", "--residency", "always", "--out", os.path.join(self.dir, "x"), expect=2).stderr
        self.assertIn("--residency", err)

    def test_energy_in_every_report(self):
        """Energy adds up over layers and components; a lower voltage spends less per MAC."""
        report, rows = self.simulate(self.write_config(tiny_config()), self.trace("tiny-cnn.json"))
        energy = report["totals"]["energy"]
        self.assertGreater(energy["total_pj"], 0)
        self.assertAlmostEqual(sum(l["energy"]["total_pj"] for l in report["layers"]), energy["total_pj"],
                               delta=1e-9 * energy["total_pj"])
        self.assertAlmostEqual(sum(energy["dynamic_pj"].values()) + sum(energy["leakage_pj"].values()),
                               energy["total_pj"], delta=1e-9 * energy["total_pj"])
        self.assertAlmostEqual(sum(float(r["energy_pj"]) for r in rows), energy["total_pj"],
                               delta=1e-6 * energy["total_pj"] + len(rows))
        self.assertAlmostEqual(energy["average_power_w"], energy["total_pj"] * 1e-12 / report["totals"]["seconds"])
        self.assertGreaterEqual(energy["peak_power_w"], energy["average_power_w"] * 0.999)
        self.assertEqual(energy["operating_point"], {"clock_ghz": 1.0, "voltage": 0.75})
        self.assertEqual(sum(s["cycles"] for s in report["steps"]), report["totals"]["cycles"])
        self.assertAlmostEqual(sum(s["energy_pj"] for s in report["steps"]), energy["total_pj"],
                               delta=1e-9 * energy["total_pj"])
        self.assertGreater(report["totals"]["area"]["total_mm2"], 0)
        low, _ = self.simulate(self.write_config(tiny_config(**{"chip/voltage": 0.6}), "low.json"),
                               self.trace("tiny-cnn.json"), out="low")
        self.assertEqual(low["totals"]["cycles"], report["totals"]["cycles"])
        self.assertLess(low["totals"]["energy"]["pj_per_mac"], energy["pj_per_mac"])
        self.assertAlmostEqual(low["totals"]["energy"]["dynamic_pj"]["multipliers"] / energy["dynamic_pj"]["multipliers"],
                               (0.6 / 0.75) ** 2)
        out = run("run", "--config", self.write_config(tiny_config()), "--trace", self.trace("tiny-cnn.json"),
                  "--out", os.path.join(self.dir, "summary")).stdout
        self.assertIn("TFLOPS/W", out)
        self.assertIn("energy by component:", out)

    def test_set_overrides_config_values(self):
        config = os.path.join(SOURCE, "configs", "tiny.json")
        base, _ = self.simulate(config, self.trace("tiny-cnn.json"), "--phases", "fwd", out="base")
        more, _ = self.simulate(config, self.trace("tiny-cnn.json"), "--phases", "fwd", "--set", "/chip/cores=2",
                                "--set", "/chip/dram/gb_per_s_per_channel=64", out="more")
        self.assertEqual(more["config"]["chip"]["cores"], 2)
        self.assertLess(more["totals"]["cycles"], base["totals"]["cycles"])
        err = run("run", "--config", config, "--set", "/chip/cores=-1", "--out", os.path.join(self.dir, "x"),
                  expect=2).stderr
        self.assertIn("chip-tiny.json: /cores", err)
        self.assertIn("set by --set /chip/cores", err)
        ok = run("validate", "--set", "/chip/cores=3", config).stdout
        self.assertIn("3 cores", ok)
        run("validate", "--set", "/chip/voltage=0", config, expect=2)

    def test_sweep_runs_points_in_parallel_keeps_failures_and_resumes(self):
        spec = {"config": os.path.join(SOURCE, "configs", "tiny.json"), "traces": [self.trace("tiny-cnn.json")],
                "run": {"phases": ["fwd"]},
                "axes": [{"set": "/chip/cores", "values": [1, 2, 0]},
                         {"set": "/chip/dram/gb_per_s_per_channel", "log_range": {"from": 8, "to": 32, "points": 3}}],
                "constraints": [{"left": "/chip/dram/gb_per_s_per_channel", "op": "<", "right": 30}],
                "metrics": ["/totals/cycles", "/totals/energy/total_pj"]}
        spec_file = os.path.join(self.dir, "spec.json")
        with open(spec_file, "w") as f:
            json.dump(spec, f)

        def results(out):
            records = {}
            with open(os.path.join(self.dir, out, "results.jsonl")) as f:
                for line in f:
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line cut short by a kill
                    self.assertNotIn(record["key"], records, "a point ran twice")
                    records[record["key"]] = record
            return records

        summary = run("sweep", spec_file, "--out", os.path.join(self.dir, "two"), "-j", "2", expect=1).stdout
        self.assertIn("9 points: 4 ok, 2 failed, 3 dropped by constraints", summary)
        two = results("two")
        self.assertEqual(len(two), 6)
        failed = [r for r in two.values() if r["status"] != "ok"]
        self.assertEqual({r["settings"]["/chip/cores"] for r in failed}, {0})
        self.assertIn("/cores", failed[0]["error"])
        run("sweep", spec_file, "--out", os.path.join(self.dir, "one"), "-j", "1", expect=1)
        one = results("one")
        self.assertEqual({k: r.get("metrics") for k, r in one.items()}, {k: r.get("metrics") for k, r in two.items()})
        ok = [r for r in two.values() if r["status"] == "ok"]
        self.assertTrue(all(r["metrics"]["/totals/cycles"] > 0 for r in ok))

        # A kill: three results and a line cut short. --resume runs the rest, once each.
        path = os.path.join(self.dir, "two", "results.jsonl")
        with open(path) as f:
            lines = f.readlines()
        with open(path, "w") as f:
            f.writelines(lines[:3])
            f.write('{"key": "cut sh')
        run("sweep", spec_file, "--out", os.path.join(self.dir, "two"), expect=2)  # not without --resume
        rerun_fails = any(json.loads(line)["status"] != "ok" for line in lines[3:])
        resumed = run("sweep", spec_file, "--out", os.path.join(self.dir, "two"), "--resume",
                      expect=1 if rerun_fails else 0).stdout
        self.assertIn("3 done before", resumed)
        self.assertEqual(results("two").keys(), two.keys())
        with open(spec_file, "w") as f:
            f.write('{"config": "c.json", "traces": [], "axes": 3}')
        err = run("sweep", spec_file, "--out", os.path.join(self.dir, "bad"), expect=2).stderr
        self.assertIn("spec.json", err)
        self.assertIn("/traces", err)

    def test_sweep_point_timeout_isolates_a_runaway_worker(self):
        spec = {"config": os.path.join(SOURCE, "configs", "tiny.json"), "traces": [self.trace("resnet18.json")],
                "axes": [{"set": "/chip/cores", "values": [1, 2]}]}
        spec_file = os.path.join(self.dir, "spec.json")
        with open(spec_file, "w") as f:
            json.dump(spec, f)
        killed = os.path.join(self.dir, "killed")
        summary = run("sweep", spec_file, "--out", killed, "-j", "2", "--point-timeout", "0.01", expect=1).stdout
        self.assertIn("2 failed", summary)
        with open(os.path.join(killed, "results.jsonl")) as f:
            records = [json.loads(line) for line in f]
        self.assertEqual(len(records), 2)
        self.assertEqual(len({r["key"] for r in records}), 2)
        for record in records:
            self.assertEqual(record["status"], "crashed")
            self.assertIn("--point-timeout 0.01", record["error"])
        run("sweep", spec_file, "--out", os.path.join(self.dir, "bad"), "--point-timeout", "0", expect=2)

    def test_sweep_points_differing_in_energy_only_share_one_timing(self):
        config = os.path.join(SOURCE, "configs", "tiny.json")
        trace = self.trace("tiny-cnn.json")
        voltages = [0.6, 0.7, 0.8]
        metrics = ["/totals/cycles", "/totals/energy/total_pj", "/totals/energy/average_power_w"]
        spec = {"config": config, "traces": [trace], "metrics": metrics,
                "axes": [{"set": "/chip/dram/gb_per_s_per_channel", "values": [4, 64]},
                         {"set": "/chip/voltage", "values": voltages}]}
        out, records = self.sweep_records(spec)
        self.assertEqual(len(records), 6)
        by_key = {r["key"]: r for r in records}
        shared = [r for r in records if "timing_of" in r]
        self.assertEqual(len(shared), 4)  # per bandwidth, one point simulated, two priced with its timing
        for record in shared:
            timed = by_key[record["timing_of"]]
            self.assertNotIn("timing_of", timed)
            self.assertEqual(timed["settings"]["/chip/dram/gb_per_s_per_channel"],
                             record["settings"]["/chip/dram/gb_per_s_per_channel"])
        for record in records:  # every point's figures are those of its own run
            settings = record["settings"]
            report, _ = self.simulate(config, trace, *[a for p, v in settings.items() for a in ("--set", f"{p}={v}")],
                                      out="single")
            for metric in metrics:
                self.assertEqual(record["metrics"][metric], report_value(report, metric), (settings, metric))
        energies = {r["settings"]["/chip/voltage"]: r["metrics"]["/totals/energy/total_pj"] for r in records
                    if r["settings"]["/chip/dram/gb_per_s_per_channel"] == 4}
        self.assertLess(energies[0.6], energies[0.7])
        self.assertLess(energies[0.7], energies[0.8])

    def test_sweep_points_share_fidelity_results_through_the_cache(self):
        config = os.path.join(SOURCE, "configs", "tiny.json")
        spec = {"config": config, "traces": [self.trace("tiny-cnn.json")],
                "metrics": ["/totals/cycles", "/fidelity/worst_sqnr_db", "/fidelity/from_cache"],
                "axes": [{"set": "/chip/dram/gb_per_s_per_channel", "values": [4, 16, 64]}]}
        out, records = self.sweep_records(spec)
        self.assertEqual(len(records), 3)
        # Bandwidth changes the timing, not the arithmetic: one pass (the workers starting
        # together wait for the one that locked it), two points served from the cache.
        entries = sorted(os.listdir(os.path.join(out, "fidelity-cache")))
        self.assertEqual([e.rsplit(".", 1)[1] for e in entries], ["json", "lock"], entries)  # no temporary file
        self.assertEqual(sorted(r["metrics"]["/fidelity/from_cache"] for r in records), [False, True, True])
        self.assertEqual(len({r["metrics"]["/fidelity/worst_sqnr_db"] for r in records}), 1)
        self.assertEqual(len({r["metrics"]["/totals/cycles"] for r in records}), 3)

    def test_sweep_under_mpirun_gives_the_local_results(self):
        mpirun = shutil.which("mpirun")
        if not mpirun:
            self.skipTest("mpirun (Open MPI) is not installed")
        spec = {"config": os.path.join(SOURCE, "configs", "tiny.json"), "traces": [self.trace("tiny-cnn.json")],
                "run": {"phases": ["fwd"]},
                "axes": [{"set": "/chip/cores", "values": [1, 0, 2, 4]},
                         {"set": "/chip/dram/gb_per_s_per_channel", "values": [8, 32]}],
                "metrics": ["/totals/cycles", "/totals/energy/total_pj"]}
        spec_file = os.path.join(self.dir, "spec.json")
        with open(spec_file, "w") as f:
            json.dump(spec, f)
        # Open MPI's plugins leave allocations behind at MPI_Finalize, unloaded before LeakSanitizer could
        # name them (the sanitizer build): leaks are checked by the local runs, not under mpirun.
        env = dict(os.environ, SYSTEMC_DISABLE_COPYRIGHT_MESSAGE="1",
                   OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                   ASAN_OPTIONS=":".join(filter(None, [os.environ.get("ASAN_OPTIONS"), "detect_leaks=0"])))

        def under_mpirun(ranks, *args, expect):
            # Its own session, so that a hung job is killed whole, ranks and their workers.
            p = subprocess.Popen([mpirun, "--oversubscribe", "-n", str(ranks), LPTSIM, *args], env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
            try:
                out, err = p.communicate(timeout=300)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.communicate()
                self.fail(f"mpirun -n {ranks} lptsim {' '.join(args)} did not end in 300 s")
            self.assertEqual(p.returncode, expect, f"mpirun -n {ranks} lptsim {' '.join(args)}\n{out}\n{err}")
            return out, err

        def results(out):
            with open(os.path.join(self.dir, out, "results.jsonl")) as f:
                records = [json.loads(line) for line in f]
            by_key = {r["key"]: r for r in records}
            self.assertEqual(len(by_key), len(records), "a point ran twice")
            return by_key

        def outcomes(records):
            return {k: (r["status"], r.get("metrics")) for k, r in records.items()}

        local_summary = run("sweep", spec_file, "--out", os.path.join(self.dir, "local"), "-j", "1", expect=1).stdout
        local = results("local")
        self.assertIn("8 points: 6 ok, 2 failed", local_summary)
        self.assertTrue(all("rank" not in r for r in local.values()))

        summary, _ = under_mpirun(2, "sweep", spec_file, "--out", os.path.join(self.dir, "mpi"), expect=1)
        self.assertIn("8 points: 6 ok, 2 failed", summary)
        self.assertEqual(summary.count("8 points"), 1, "only rank 0 reports")
        spread = results("mpi")
        self.assertEqual(outcomes(spread), outcomes(local))
        self.assertEqual({r["status"] for r in spread.values() if r["settings"]["/chip/cores"] == 0}, {"error"})
        self.assertLessEqual({r["rank"] for r in spread.values()}, {0, 1})
        self.assertIn(1, {r["rank"] for r in spread.values()}, "rank 1 ran no point")

        # One rank does everything; a finished sweep resumed has nothing left to run.
        single, _ = under_mpirun(1, "sweep", spec_file, "--out", os.path.join(self.dir, "single"), expect=1)
        self.assertEqual(outcomes(results("single")), outcomes(local))
        under_mpirun(2, "sweep", spec_file, "--out", os.path.join(self.dir, "mpi"), expect=2)  # not without --resume
        resumed, _ = under_mpirun(2, "sweep", spec_file, "--out", os.path.join(self.dir, "mpi"), "--resume",
                                  expect=0)
        self.assertIn("8 done before", resumed)

        # A bad spec: reported once, by rank 0, and every rank ends.
        with open(spec_file, "w") as f:
            f.write('{"config": "c.json", "traces": [], "axes": 3}')
        _, err = under_mpirun(2, "sweep", spec_file, "--out", os.path.join(self.dir, "bad"), expect=2)
        self.assertEqual(err.count("spec.json: /traces"), 1, err)

    def sweep_for_report(self):
        """A tiny sweep over two traces: 2 x 3 points each, the cores=0 ones failing."""
        spec = {"config": os.path.join(SOURCE, "configs", "tiny.json"),
                "traces": [self.trace("tiny-cnn.json"), self.trace("gemm-only.json")],
                "run": {"phases": ["fwd"]},
                "axes": [{"set": "/chip/cores", "values": [1, 2, 0]},
                         {"set": "/chip/dram/gb_per_s_per_channel", "values": [4, 64]}]}
        spec_file = os.path.join(self.dir, "spec.json")
        with open(spec_file, "w") as f:
            json.dump(spec, f)
        sweep = os.path.join(self.dir, "sweep")
        run("sweep", spec_file, "--out", sweep, "-j", "2", expect=1)
        with open(os.path.join(sweep, "results.jsonl")) as f:
            records = [json.loads(line) for line in f]
        self.assertEqual(len(records), 12)
        return sweep, records

    def read_csv(self, path):
        with open(path, newline="") as f:
            return list(csv.DictReader(f))

    def assert_plots(self, folder, *stems):
        for stem in stems:
            with open(os.path.join(folder, stem + ".png"), "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", stem)
            with open(os.path.join(folder, stem + ".svg")) as f:
                self.assertIn("<svg", f.read(2000), stem)

    def test_report_of_a_sweep_tables_front_and_plots(self):
        sweep, records = self.sweep_for_report()
        out = run("report", sweep).stdout
        folder = os.path.join(sweep, "report")
        self.assertIn("12 points (8 ok, 4 failed) over 2 trace(s)", out)
        # results.csv: one row per point, every axis and metric, in the file's order.
        rows = self.read_csv(os.path.join(folder, "results.csv"))
        self.assertEqual([r["key"] for r in rows], [r["key"] for r in records])
        for row, record in zip(rows, records):
            self.assertEqual(row["status"], record["status"])
            self.assertEqual(int(row["/chip/cores"]), record["settings"]["/chip/cores"])
            self.assertEqual(row["error"], record.get("error", ""))
            for metric, value in record.get("metrics", {}).items():
                self.assertAlmostEqual(float(row[metric]), value, delta=1e-9 * abs(value), msg=metric)
            if record["status"] != "ok":
                self.assertEqual(row["/totals/cycles"], "")
        # pareto.csv: the default objectives, and the front recomputed here from the metrics, per trace.
        objectives = {"/totals/samples_per_second": 1, "/totals/energy/total_pj": -1, "/totals/area/total_mm2": -1,
                      "/fidelity/worst_sqnr_db": 1}
        pareto = self.read_csv(os.path.join(folder, "pareto.csv"))
        self.assertEqual([c for c in pareto[0] if c.endswith(("max", "min"))],
                         ["/totals/samples_per_second:max", "/totals/energy/total_pj:min", "/totals/area/total_mm2:min",
                          "/fidelity/worst_sqnr_db:max"])

        def better(record):
            return [sign * record["metrics"][pointer] for pointer, sign in objectives.items()]

        ok = [r for r in records if r["status"] == "ok"]
        for row, record in zip(pareto, records):
            if record["status"] != "ok":
                self.assertEqual(row["on_front"], "no")
                continue
            mine = better(record)
            beaten = any(all(o >= m for o, m in zip(better(other), mine)) and better(other) != mine
                         for other in ok if other["trace"] == record["trace"])
            self.assertEqual(row["on_front"], "no" if beaten else "yes", row)
            self.assertAlmostEqual(float(row["/totals/energy/total_pj:min"]), record["metrics"]["/totals/energy/total_pj"])
        # More cores cost area and buy speed: both the 1- and the 2-core designs are on some front.
        # The summary lists each front point (fewer than 10 per trace here).
        listed = [line for line in out.splitlines() if line.startswith("    /chip/cores=")]
        self.assertEqual(len(listed), sum(r["on_front"] == "yes" for r in pareto))
        front_cores = {r["/chip/cores"] for r in pareto if r["on_front"] == "yes"}
        self.assertEqual(front_cores, {"1", "2"})
        self.assert_plots(folder, "vs_chip_cores", "vs_chip_dram_gb_per_s_per_channel", "pareto")

        # Chosen objectives (an axis among them), CSV only, elsewhere.
        elsewhere = os.path.join(self.dir, "chosen")
        run("report", sweep, "--out", elsewhere, "--no-plots", "--objective", "/totals/cycles:min",
            "--objective", "/chip/cores:min")
        pareto = self.read_csv(os.path.join(elsewhere, "pareto.csv"))
        self.assertIn("/chip/cores:min", pareto[0])
        self.assertEqual(sorted(os.listdir(elsewhere)), ["pareto.csv", "results.csv"])

    def test_report_of_a_run_time_breakdown(self):
        report, _ = self.simulate(os.path.join(SOURCE, "configs", "tiny.json"), self.trace("tiny-cnn.json"))
        out_dir = os.path.join(self.dir, "out")
        quiet = run("report", out_dir, "--quiet")
        self.assertEqual((quiet.stdout, quiet.stderr), ("", ""))
        rows = self.read_csv(os.path.join(out_dir, "report", "time_breakdown.csv"))
        total = report["totals"]["cycles"]
        for by in ("phase", "layer_type", "step_kind"):
            group = [r for r in rows if r["by"] == by]
            self.assertAlmostEqual(sum(float(r["cycles"]) for r in group), total, delta=1e-3 * total, msg=by)
            self.assertAlmostEqual(sum(float(r["share"]) for r in group), 1.0, delta=1e-3, msg=by)
            for r in group:
                parts = float(r["busy_cycles"]) + sum(float(v) for k, v in r.items() if k.startswith("stall_"))
                self.assertAlmostEqual(parts, float(r["cycles"]), delta=1e-3 * total + 1, msg=r)
        self.assertEqual({r["name"] for r in rows if r["by"] == "phase"}, set(report["phases"]))
        self.assertEqual({r["name"] for r in rows if r["by"] == "layer_type"}, {l["type"] for l in report["layers"]})
        self.assertEqual(float(next(r for r in rows if r["by"] == "phase" and r["name"] == "fwd")["cycles"]),
                         round(report["phases"]["fwd"]["cycles"], 1))
        self.assert_plots(os.path.join(out_dir, "report"), "time_breakdown")

    def test_report_input_errors(self):
        sweep, records = self.sweep_for_report()
        results = os.path.join(sweep, "results.jsonl")
        with open(results) as f:
            lines = f.readlines()
        err = run("report", sweep, "--objective", "/totals/no_such:max", "--no-plots", expect=2).stderr
        self.assertIn("/totals/no_such", err)
        self.assertIn("results.jsonl", err)
        run("report", sweep, "--objective", "/totals/cycles:best", "--no-plots", expect=2)
        # A line cut short by a kill, last: skipped with a count.
        with open(results, "w") as f:
            f.writelines(lines)
            f.write('{"key": "cut sh')
        err = run("report", sweep, "--no-plots").stderr
        self.assertIn("skipped 1 line(s) cut short", err)
        self.assertEqual(len(self.read_csv(os.path.join(sweep, "report", "results.csv"))), 12)
        # A corrupt line in the middle: its file, line and JSON path.
        with open(results, "w") as f:
            f.writelines(lines[:2])
            f.write('{"key": "x", "trace": "t", "settings": {}, "status": "ok", "metrics": [1]}\n')
            f.writelines(lines[2:])
        err = run("report", sweep, "--no-plots", expect=2).stderr
        self.assertIn("results.jsonl:3: /metrics", err)
        with open(results, "w") as f:
            f.writelines(lines[:5])
            f.write("not json\n")
            f.writelines(lines[5:])
        self.assertIn("results.jsonl:6: not a JSON object", run("report", sweep, expect=2).stderr)
        # A run's report.json without what the breakdown reads; objectives are for sweeps.
        broken = os.path.join(self.dir, "broken")
        os.makedirs(broken)
        with open(os.path.join(broken, "report.json"), "w") as f:
            json.dump({"totals": {"cycles": 1, "stall_cycles": {}}, "workload": {"phases": ["fwd"]}, "phases": {}}, f)
        self.assertIn("report.json: /phases/fwd", run("report", broken, expect=2).stderr)
        self.assertIn("--objective applies to a sweep",
                      run("report", broken, "--objective", "/totals/cycles:min", expect=2).stderr)
        # Neither a sweep nor a run.
        err = run("report", self.dir, expect=2).stderr
        self.assertIn(self.dir, err)
        self.assertIn("neither a sweep's results.jsonl nor a run's report.json", err)
        # Without matplotlib: a warning, the CSV files, no plots, exit status 0.
        with open(results, "w") as f:
            f.writelines(lines)
        fake = os.path.join(self.dir, "fake-site", "matplotlib")
        os.makedirs(fake)
        with open(os.path.join(fake, "__init__.py"), "w") as f:
            f.write("raise ImportError('no matplotlib here')\n")
        env = dict(os.environ, PYTHONPATH=os.path.dirname(fake))
        bare = os.path.join(self.dir, "bare")
        p = subprocess.run([LPTSIM, "report", sweep, "--out", bare], capture_output=True, text=True, env=env,
                           timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("warning: no plots", p.stderr)
        self.assertIn("matplotlib", p.stderr)
        self.assertEqual(sorted(os.listdir(bare)), ["pareto.csv", "results.csv"])

    def test_roofline_bound_is_a_lower_bound(self):
        """Steps one after another never beat their compute, SFU and rounder bounds (their
        weights may load during the step before); no run beats the overlapped bound; the
        totals add up."""
        config = os.path.join(SOURCE, "configs", "rapid-4core.json")
        for trace in ("resnet18.json", "lstm_speech.json"):
            for fusion in ("none", "full"):
                # Forward steps each read the step before: none overlaps another's work.
                report, _ = self.simulate(config, os.path.join(SOURCE, "traces", trace), "--fusion", fusion,
                                          "--phases", "fwd")
                for layer in report["layers"]:
                    bound = layer["bound"]
                    work = max(bound["compute_cycles"], bound["sfu_cycles"], bound["rounder_cycles"])
                    self.assertLessEqual(work, layer["cycles"] * 1.0001,
                                         f"{trace} {fusion} {layer['layer']}/{layer['phase']}")
                self.assertLessEqual(report["totals"]["bound"]["overlapped_cycles"], report["totals"]["cycles"])
                report, rows = self.simulate(config, os.path.join(SOURCE, "traces", trace), "--fusion", fusion)
                totals = report["totals"]
                self.assertLessEqual(totals["bound"]["overlapped_cycles"], totals["cycles"])
                self.assertAlmostEqual(sum(l["bound"]["cycles"] for l in report["layers"]),
                                       totals["bound"]["cycles"], delta=1e-6 * totals["bound"]["cycles"])
                self.assertGreater(totals["bound"]["fraction_achieved"], 0.3)
                self.assertLessEqual(totals["bound"]["fraction_achieved"], 1.0)
                self.assertAlmostEqual(sum(k["cycles"] for k in report["step_kinds"].values()), totals["cycles"])
                self.assertEqual(len(rows), len(report["layers"]))

    def test_dram_latency_binds_through_outstanding_requests(self):
        """Ten times the DRAM latency cuts each DMA engine's bandwidth tenfold (Little's law),
        below DRAM's: the forward pass slows down, and ten times the requests in flight win
        most of it back."""
        config = tiny_config()
        base, _ = self.simulate(self.write_config(config), self.trace("tiny-cnn.json"), "--phases", "fwd", out="a")
        config["chip"]["dram"]["latency_ns"] *= 10
        slow, _ = self.simulate(self.write_config(config, "slow.json"), self.trace("tiny-cnn.json"),
                                "--phases", "fwd", out="b")
        # Ten times the requests in flight restore the bandwidth: what is left is latency.
        config["chip"]["core"]["dma"]["outstanding_requests"] *= 10
        more, _ = self.simulate(self.write_config(config, "more.json"), self.trace("tiny-cnn.json"),
                                "--phases", "fwd", out="c")
        self.assertGreater(slow["totals"]["cycles"], 1.1 * base["totals"]["cycles"])
        self.assertLess(more["totals"]["cycles"], slow["totals"]["cycles"] - 0.5 * (slow["totals"]["cycles"] - base["totals"]["cycles"]))

    def test_inference_mode(self):
        report, rows = self.simulate(os.path.join(SOURCE, "configs", "tiny.json"), self.trace("tiny-cnn.json"),
                                     "--mode", "inference")
        self.assertEqual(report["workload"]["mode"], "inference")
        self.assertEqual(report["workload"]["batch"], 1)
        self.assertEqual({l["phase"] for l in report["layers"]}, {"fwd"})
        training, _ = self.simulate(os.path.join(SOURCE, "configs", "tiny.json"), self.trace("tiny-cnn.json"),
                                    "--phases", "fwd", "--batch", "1", out="training")
        # INT4 operands and activations: less traffic than the training forward pass.
        traffic = lambda r: r["totals"]["bytes"]["dram_read"] + r["totals"]["bytes"]["dram_write"]
        self.assertLess(traffic(report), traffic(training))
        batched, _ = self.simulate(os.path.join(SOURCE, "configs", "tiny.json"), self.trace("tiny-cnn.json"),
                                   "--mode", "inference", "--batch", "4", out="batched")
        self.assertEqual(batched["workload"]["batch"], 4)
        err = run("run", "--mode", "inference", "--phases", "fwd,bwd", "--out", os.path.join(self.dir, "x"),
                  expect=2).stderr
        self.assertIn("--phases", err)
        err = run("run", "--mode", "inference", "--config", os.path.join(SOURCE, "configs", "fp16-baseline.json"),
                  "--trace", self.trace("tiny-cnn.json"), "--out", os.path.join(self.dir, "y"), expect=2).stderr
        self.assertIn("/precision", err)
        self.assertIn("inference", err)

    def test_roofline_plot(self):
        self.simulate(os.path.join(SOURCE, "configs", "tiny.json"), self.trace("tiny-cnn.json"), "--fusion", "full")
        png = os.path.join(self.dir, "roofline.png")
        p = subprocess.run(["/usr/bin/python3", os.path.join(SOURCE, "scripts", "plot_roofline.py"),
                            os.path.join(self.dir, "out", "report.json"), png],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(png, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")

    def test_unknown_fusion_mode_is_a_usage_error(self):
        err = run("run", "--fusion", "some", "--out", os.path.join(self.dir, "x"), expect=2).stderr
        self.assertIn("--fusion", err)
        # A mode the chip's SFU cannot run: the option, the config and the chip's setting.
        config = self.write_config(tiny_config(**{"chip/core/sfu/fusion": "epilogue"}))
        err = run("run", "--config", config, "--trace", self.trace("tiny-cnn.json"), "--fusion", "full",
                  "--out", os.path.join(self.dir, "y"), expect=2).stderr
        self.assertIn("--fusion full", err)
        self.assertIn("config.json", err)
        self.assertIn("/chip/core/sfu/fusion", err)

    def test_forward_only_run(self):
        report, _ = self.simulate(os.path.join(SOURCE, "configs", "tiny.json"), self.trace("tiny-cnn.json"),
                                  "--phases", "fwd", "--batch", "2")
        self.assertEqual(report["workload"]["phases"], ["fwd"])
        self.assertEqual(report["workload"]["batch"], 2)
        self.assertEqual({l["phase"] for l in report["layers"]}, {"fwd"})

    def test_deterministic(self):
        config = os.path.join(SOURCE, "configs", "tiny.json")
        a, _ = self.simulate(config, self.trace("tiny-cnn.json"), out="a")
        b, _ = self.simulate(config, self.trace("tiny-cnn.json"), out="b")
        a.pop("simulator"), b.pop("simulator")
        self.assertEqual(a, b)

    def test_timeline_agrees_with_the_report(self):
        """--timeline writes Chrome trace-event JSON whose intervals add up to the report's counters."""
        config = os.path.join(SOURCE, "configs", "tiny.json")
        timeline_file = os.path.join(self.dir, "timeline.json")
        two_cores = ("--set", "/chip/cores=2")
        report, _ = self.simulate(config, self.trace("tiny-cnn.json"), *two_cores, "--timeline", timeline_file)
        with open(timeline_file) as f:
            timeline = json.load(f)
        events = [e for e in timeline["traceEvents"] if e["ph"] == "X"]
        self.assertEqual({e["pid"] for e in events}, {0, 1})
        names = {(e["pid"], e["args"]["name"]) for e in timeline["traceEvents"] if e["name"] == "process_name"}
        self.assertEqual(names, {(0, "core 0"), (1, "core 1")})
        total = report["totals"]["cycles"]
        self.assertEqual(timeline["otherData"]["total_cycles"], total)
        clock_ghz = timeline["otherData"]["clock_ghz"]
        # Per layer and phase, the mean over the cores of the intervals' cycles
        # is the report's busy, stall and SFU cycles; per core, compute and
        # stalls fill the run.
        sums, per_core = {}, {0: 0, 1: 0}
        for e in events:
            a = e["args"]
            self.assertAlmostEqual(e["ts"], a["begin_cycle"] / (clock_ghz * 1000), delta=1e-6)
            self.assertAlmostEqual(e["dur"], a["cycles"] / (clock_ghz * 1000), delta=1e-6)
            self.assertGreater(a["cycles"], 0)
            self.assertLessEqual(a["begin_cycle"] + a["cycles"], total)
            field = {"compute": "busy_cycles", "sfu": "sfu_busy_cycles"}.get(e["cat"])
            if e["cat"] == "stall":
                field = "stall_cycles." + e["name"].removeprefix("stall: ")
            if e["cat"] in ("compute", "stall"):
                per_core[e["pid"]] += a["cycles"]
            if field:
                key = (a["layer"], a["phase"], field)
                sums[key] = sums.get(key, 0) + a["cycles"]
        self.assertEqual(per_core, {0: total, 1: total})
        checked = 0
        for layer in report["layers"]:
            for field, value in [("busy_cycles", layer["busy_cycles"]), ("sfu_busy_cycles", layer["sfu_busy_cycles"])] + \
                    [("stall_cycles." + k, v) for k, v in layer["stall_cycles"].items()]:
                measured = sums.pop((layer["layer"], layer["phase"], field), 0) / 2
                self.assertAlmostEqual(measured, value, delta=1e-6 * value + 1e-9,
                                       msg=f"{layer['layer']}/{layer['phase']} {field}")
                checked += value > 0
        self.assertEqual(sums, {})  # nothing outside the report's layers
        self.assertGreater(checked, len(report["layers"]))
        # Without --timeline: no file, and the same report.
        plain, _ = self.simulate(config, self.trace("tiny-cnn.json"), *two_cores, out="plain")
        self.assertEqual(sorted(os.listdir(os.path.join(self.dir, "plain"))), ["layers.csv", "phases.csv", "report.json"])
        report.pop("simulator"), plain.pop("simulator")
        self.assertEqual(plain, report)

    def test_timeline_window(self):
        config = os.path.join(SOURCE, "configs", "tiny.json")
        full_file, window_file = os.path.join(self.dir, "full.json"), os.path.join(self.dir, "window.json")
        report, _ = self.simulate(config, self.trace("tiny-cnn.json"), "--timeline", full_file, out="full")
        first, last = report["totals"]["cycles"] // 3, report["totals"]["cycles"] // 2
        self.simulate(config, self.trace("tiny-cnn.json"), "--timeline", window_file,
                      "--timeline-window", f"{first}:{last}", out="window")

        def intervals(path):
            with open(path) as f:
                return [(e["tid"], e["args"]["begin_cycle"], e["args"]["begin_cycle"] + e["args"]["cycles"])
                        for e in json.load(f)["traceEvents"] if e["ph"] == "X"]
        # The window holds exactly the full timeline's intervals cut to it.
        cut = sorted((tid, max(b, first), min(e, last)) for tid, b, e in intervals(full_file)
                     if max(b, first) < min(e, last))
        self.assertEqual(sorted(intervals(window_file)), cut)
        self.assertGreater(len(cut), 0)
        self.assertLess(len(cut), len(intervals(full_file)))
        for window in ("5:5", "9:2", "x:10", "10"):
            self.expect_input_error("run", "--config", config, "--trace", self.trace("tiny-cnn.json"), "--out", self.dir,
                                    "--timeline", window_file, "--timeline-window", window,
                                    fragments=("--timeline-window",))
        self.expect_input_error("run", "--timeline-window", "0:10", fragments=("needs --timeline",))

    # --- timing properties ---
    def test_unbounded_bandwidth_gives_pure_compute_cycles(self):
        config = unbounded(tiny_config())
        report, rows = self.simulate(self.write_config(config), self.trace("gemm-only.json"), "--phases", "fwd")
        array = config["chip"]["core"]["mac_array"]
        self.assertFalse(array["pipelined_folds"])
        R, C = array["rows"], array["cols"]
        expected_total = 0
        for row in rows:
            layer = next(l for l in report["layers"] if l["layer"] == row["layer"] and l["phase"] == row["phase"])
            # MAC-array cycles of every tile, plus the one cycle the (unboundedly wide)
            # rounders take to convert the last tile's outputs after the array finishes.
            expected = self.compute_cycles(layer, row["tiling"], R, C, config) + layer["steps"]
            self.assertEqual(int(row["cycles"]), expected, f"{row['layer']}: {row['tiling']}")
            expected_total += expected
        self.assertEqual(report["totals"]["cycles"], expected_total)

    def compute_cycles(self, layer, tiling, R, C, config):
        """Independent SCALE-Sim-paper form: each fold of r<=R rows, c<=C cols streams T: 2r+c+T-2."""
        # the GEMM of this forward layer, from the trace
        with open(self.trace("gemm-only.json")) as f:
            trace = json.load(f)
        spec = next(l for l in trace["layers"] if l["name"] == layer["layer"])
        batch = trace["batch"]
        if spec["type"] == "conv2d":
            c, h, w = spec["input"]
            kh, kw = spec["kernel"]
            sh, sw = spec.get("stride", [1, 1])
            ph, pw = spec.get("padding", [0, 0])
            ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
            M, N, K = batch * ho * wo, spec["out_channels"], c * kh * kw
        else:
            M, N, K = batch, spec["out_features"], spec["in_features"]
        first = layer["layer"] in ("conv1",)
        last = layer["layer"] in ("fc",)
        precision = config["precision"]
        policy = (precision["first_layer"]["fwd"] if first else
                  precision["last_layer"]["fwd"] if last else precision["fwd"])
        rates = config["chip"]["core"]["mac_array"]["macs_per_pe_per_cycle"]
        v = min(rates[policy["a"]], rates[policy["b"]])
        tm, tn, tk = map(int, re.match(r"(\d+)x(\d+)x(\d+)", tiling).groups())

        def splits(extent, size):
            return [min(size, extent - i) for i in range(0, extent, size)]

        total = 0
        for m in splits(M, tm):
            for n in splits(N, tn):
                for k in splits(K, tk):
                    T = math.ceil(k / v)  # output stationary: rows<-m, cols<-n
                    for r in splits(m, R):
                        for c in splits(n, C):
                            total += 2 * r + c + T - 2
        return total

    def layer_cycles(self, report, name, phase="fwd"):
        return next(l["cycles"] for l in report["layers"] if l["layer"] == name and l["phase"] == phase)

    def test_halving_dram_bandwidth_doubles_a_memory_bound_layer(self):
        # A wide SFU, so the ReLU is limited by DRAM alone.
        fast = tiny_config(**{"chip/core/sfu/lanes": 1024})
        slow = tiny_config(**{"chip/core/sfu/lanes": 1024})
        slow["chip"]["dram"]["gb_per_s_per_channel"] = fast["chip"]["dram"]["gb_per_s_per_channel"] / 2
        rf, _ = self.simulate(self.write_config(fast, "fast.json"), self.trace("bound-layers.json"), "--phases", "fwd", out="f")
        rs, _ = self.simulate(self.write_config(slow, "slow.json"), self.trace("bound-layers.json"), "--phases", "fwd", out="s")
        layer_f = next(l for l in rf["layers"] if l["layer"] == "big_relu")
        self.assertGreater(layer_f["stall_cycles"]["dram"], 0.5 * layer_f["cycles"], "relu should be DRAM-bound")
        ratio = self.layer_cycles(rs, "big_relu") / self.layer_cycles(rf, "big_relu")
        self.assertGreater(ratio, 1.8)
        self.assertLess(ratio, 2.05)

    def test_doubling_cores_halves_a_compute_bound_layer(self):
        one = unbounded(tiny_config())
        two = unbounded(tiny_config())
        two["chip"]["cores"] = 2
        r1, _ = self.simulate(self.write_config(one, "one.json"), self.trace("bound-layers.json"), "--phases", "fwd", out="1")
        r2, _ = self.simulate(self.write_config(two, "two.json"), self.trace("bound-layers.json"), "--phases", "fwd", out="2")
        ratio = self.layer_cycles(r2, "big_conv") / self.layer_cycles(r1, "big_conv")
        self.assertGreater(ratio, 0.45)
        self.assertLess(ratio, 0.56)

    # --- errors ---
    def test_bad_config_names_file_and_path(self):
        path = self.write_config(tiny_config(**{"chip/core/mac_array/rows": 0}), "bad.json")
        p = run("run", "--config", path, "--trace", self.trace("tiny-cnn.json"), "--out", self.dir, expect=2)
        self.assertIn("bad.json", p.stderr)
        self.assertIn("/chip/core/mac_array/rows", p.stderr)

    def test_bad_trace_and_json_syntax(self):
        bad = os.path.join(self.dir, "broken.json")
        with open(bad, "w") as f:
            f.write('{"network": "x",\n "batch": }')
        p = run("validate", bad, expect=2)
        self.assertIn("broken.json", p.stderr)
        self.assertIn("line 2", p.stderr)
        p = run("run", "--trace", os.path.join(self.dir, "missing.json"), "--config",
                os.path.join(SOURCE, "configs", "tiny.json"), expect=2)
        self.assertIn("missing.json", p.stderr)

    def test_numerics_swamping_setups_and_curves(self):
        out = os.path.join(self.dir, "wang")
        p = run("numerics", "swamping", "--setup", "wang2018", "--max-log2-n", "12", "--trials", "2", "--out", out)
        self.assertIn("sums of products of ibm_fp8 inputs from uniform:0,1, 2 trials", p.stdout)
        with open(os.path.join(out, "swamping.png"), "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        rows = self.read_csv(os.path.join(out, "swamping.csv"))
        error = {(r["config"], int(r["n"])): float(r["mean_relative_error"]) for r in rows}
        self.assertEqual(sorted({r["config"] for r in rows}), ["fp16_chunk64", "fp16_nearest", "fp16_sr", "fp32"])
        self.assertEqual(sorted({int(r["n"]) for r in rows}), [2 ** e for e in range(6, 13)])
        # Nearest rounding without chunks has swamped by n = 4096; chunks have not.
        self.assertGreater(error[("fp16_nearest", 4096)], 0.1)
        self.assertLess(error[("fp16_chunk64", 4096)], 0.02)
        # Curves of the user's own, on sums of values; options override the setup's.
        out = os.path.join(self.dir, "own")
        run("numerics", "swamping", "--setup", "wang2018", "--curve", "plain:acc=fp16",
            "--curve", "c32:acc=fp16,chunk=32,round=rtz", "--sum", "values", "--dist", "constant:0.0625",
            "--input-format", "fp16", "--min-log2-n", "16", "--max-log2-n", "16", "--trials", "1",
            "--out", out, "--no-plot")
        rows = self.read_csv(os.path.join(out, "swamping.csv"))
        self.assertEqual([(r["config"], r["n"], r["mean_relative_error"]) for r in rows],
                         [("plain", "65536", "0.96875"), ("c32", "65536", "0")])
        self.assertFalse(os.path.exists(os.path.join(out, "swamping.png")))
        self.expect_input_error("numerics", "swamping", "--curve", "x:acc=fp16,chunk=big", "--out", out,
                                fragments=("--curve \"x:acc=fp16,chunk=big\": chunk: expected an integer",))
        self.expect_input_error("numerics", "swamping", "--dist", "uniform:1,0", "--out", out,
                                fragments=("--dist \"uniform:1,0\": expected uniform:LO,HI (LO < HI)",))

    def test_numerics_convert_saturate_and_invalid(self):
        def convert(target, text, *options):
            p = subprocess.run([LPTSIM, "numerics", "convert", "--to", target, *options], input=text,
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            return [line.split("\t") for line in p.stdout.splitlines()]
        # --saturate: +-Inf clamps like any overflow, with or without an Inf code in the format.
        for target, largest in (("fp16", "65504"), ("fp8_e5m2", "57344"), ("fp8_e4m3", "448"),
                                ("hfp8_e4m3", "30"), ("int8", "127")):
            rows = convert(target, "inf\n1e30\n", "--saturate")
            self.assertEqual([(r[3], r[4]) for r in rows], [(largest, "saturated")] * 2, target)
        self.assertEqual(convert("fp16", "inf\n")[0][4], "inf")
        self.assertEqual(convert("fp8_e4m3", "inf\n")[0][4], "nan")
        self.assertEqual(convert("int8", "nan\n")[0][1:], ["0x00", "0x0p+0", "0", "invalid"])

    def test_usage_errors(self):
        run("frobnicate", expect=2)
        run("run", "--phases", "fwd,sideways", expect=2)
        run("run", "--batch", "0", expect=2)
        run("run", "--no-such-option", expect=2)
        for command in ("run", "validate", "numerics"):
            self.assertIn("usage", run(command, "--help").stdout.lower())

    def test_a_file_in_the_wrong_place_says_what_it_is(self):
        chip = os.path.join(SOURCE, "configs", "chip-tiny.json")
        config = os.path.join(SOURCE, "configs", "tiny.json")
        trace = self.trace("tiny-cnn.json")
        self.expect_input_error("run", "--config", chip, "--trace", trace, "--out", os.path.join(self.dir, "x"),
                                fragments=("chip-tiny.json", "a chip description", "\"chip\""))
        self.expect_input_error("run", "--config", config, "--trace", config, "--out", os.path.join(self.dir, "x"),
                                fragments=("an accelerator config", "where a trace", "--config"))
        self.expect_input_error("run", "--config", trace, "--trace", trace, "--out", os.path.join(self.dir, "x"),
                                fragments=("a trace", "--trace"))
        self.expect_input_error("sweep", config, "--out", os.path.join(self.dir, "s"),
                                fragments=("an accelerator config", "where a sweep spec"))
        spec = os.path.join(self.dir, "spec.json")
        with open(spec, "w") as f:
            json.dump({"config": config, "traces": [trace],
                       "axes": [{"set": "/chip/cores", "values": [1, 2, 3]}]}, f)
        self.assertIn("sweep spec, 3 points on 1 traces", run("validate", spec).stdout)

    def test_quiet_and_verbose_in_every_command(self):
        config = os.path.join(SOURCE, "configs", "tiny.json")
        trace = self.trace("tiny-cnn.json")
        out = os.path.join(self.dir, "out")
        quiet = run("run", "--config", config, "--trace", trace, "--out", out, "--quiet")
        self.assertEqual((quiet.stdout, quiet.stderr), ("", ""))
        normal = run("run", "--config", config, "--trace", trace, "--out", out)
        self.assertIn("report written", normal.stdout)
        self.assertIn("simulated", normal.stderr)
        self.assertNotIn("lptsim: map: ", normal.stderr)
        verbose = run("run", "--config", config, "--trace", trace, "--out", out, "--verbose")
        for stage in ("expand", "map", "simulate", "report"):
            self.assertIn(f"lptsim: {stage}: ", verbose.stderr)
        self.assertEqual(run("validate", "-q", config, trace).stdout, "")
        spec = os.path.join(self.dir, "spec.json")
        with open(spec, "w") as f:
            json.dump({"config": config, "traces": [trace], "run": {"phases": ["fwd"]},
                       "axes": [{"set": "/chip/cores", "values": [1, 2]}]}, f)
        swept = run("sweep", spec, "--out", os.path.join(self.dir, "s1"), "-v")
        self.assertEqual(swept.stderr.count("sweep: ok "), 2, swept.stderr)
        swept = run("sweep", spec, "--out", os.path.join(self.dir, "s2"), "-q")
        # Under AddressSanitizer a worker leaving by _exit after SystemC's coroutines ran
        # gets ASan's own note on their stacks (a known false-positive warning), not lptsim's.
        notes = re.compile(r"^==\d+==WARNING: ASan is ignoring requested __asan_handle_no_return.*\n"
                           r"(False positive error reports may follow\n)?(For details see .*\n)?", re.M)
        self.assertEqual((swept.stdout, notes.sub("", swept.stderr)), ("", ""))
        self.assertIn("ok: ", run("validate", "-v", config, trace).stdout)
        # Every command takes both, and not together.
        for command in (["run"], ["validate", config], ["sweep"], ["trace-info", trace], ["import-scalesim"],
                        ["numerics", "formats"], ["numerics", "convert"], ["numerics", "swamping"], ["report"]):
            for flag in ("--quiet", "--verbose"):
                self.assertIn(flag, run(*command, "--help").stdout, command)
            self.expect_input_error(*command, "--quiet", "--verbose", fragments=("exclude each other",))

    def test_validate_scalesim_csv(self):
        good = os.path.join(self.dir, "net.csv")
        with open(good, "w") as f:
            f.write("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
                    "Conv1, 32, 32, 3, 3, 3, 16, 1,\n")
        self.assertIn("ok: ", run("validate", good).stdout)
        bad = os.path.join(self.dir, "bad.csv")
        with open(bad, "w") as f:
            f.write("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
                    "Conv1, 32, 32, 3, 3, three, 16, 1,\n")
        p = run("validate", bad, expect=2)
        self.assertIn("bad.csv", p.stderr)
        self.assertIn("line 2", p.stderr)

    def test_validate_shipped_files(self):
        files = [os.path.join(SOURCE, "configs", f) for f in sorted(os.listdir(os.path.join(SOURCE, "configs")))
                 if f.endswith(".json")]
        files += [os.path.join(SOURCE, "traces", f) for f in sorted(os.listdir(os.path.join(SOURCE, "traces")))
                  if f.endswith(".json")]
        p = run("validate", *files)
        self.assertEqual(p.stdout.count("ok: "), len(files))

    # --- hostile input: every case a clear exit-2 message, never a crash or hang ---
    def write_trace(self, layers, name="trace.json", batch=1):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            json.dump({"network": "n", "source": "test", "batch": batch, "layers": layers}, f)
        return path

    def expect_input_error(self, *args, fragments=()):
        p = run(*args, expect=2)
        # One prefix style for every error: the command that reports it.
        self.assertRegex(p.stderr, re.compile(r"^lptsim [a-z-]+( [a-z]+)?: ", re.M))
        for fragment in fragments:
            self.assertIn(fragment, p.stderr)
        return p

    def test_overflowing_layers_are_input_errors(self):
        conv = self.write_trace([{"name": "wide", "type": "conv2d", "input": [2 ** 31, 1, 1],
                                  "out_channels": 2 ** 31, "kernel": [1, 1]}])
        self.expect_input_error("validate", conv, fragments=("trace.json", "/layers/0", "overflows"))
        self.expect_input_error("run", "--config", os.path.join(SOURCE, "configs", "tiny.json"),
                                "--trace", conv, "--out", self.dir, fragments=("/layers/0",))
        linear = self.write_trace([{"name": "big", "type": "linear", "in_features": 65536,
                                    "out_features": 65536, "tokens": 65536}], "linear.json", batch=8)
        self.expect_input_error("validate", linear, fragments=("/layers/0", "the limit is 2^50"))

    def test_strict_json_reader(self):
        cases = {
            "dup.json": ('{"batch":8,"batch":3}', ("/batch", "duplicate key", "line 1, column 12")),
            "deep.json": ("[" * 100000 + "]" * 100000, ("nesting deeper than 64",)),
            "huge.json": ('{"network": "n", "batch": 1e400}', ("number overflow", "line 1")),
            "digits.json": ('{"network": "n", "source": "s", "batch": 12345678901234567890123, "layers": []}',
                            ("/batch", "expected an integer")),
        }
        for name, (text, fragments) in cases.items():
            path = os.path.join(self.dir, name)
            with open(path, "w") as f:
                f.write(text)
            self.expect_input_error("validate", path, fragments=(name, *fragments))

    def test_inputs_must_be_regular_files(self):
        fifo = os.path.join(self.dir, "fifo.json")
        os.mkfifo(fifo)
        self.expect_input_error("validate", fifo, fragments=("FIFO",))
        self.expect_input_error("run", "--trace", fifo, "--out", self.dir, fragments=("FIFO",))
        self.expect_input_error("validate", "/dev/zero", fragments=("character device",))
        self.expect_input_error("validate", self.dir, fragments=("is a directory",))

    def test_output_directory_is_checked_before_simulating(self):
        blocker = os.path.join(self.dir, "file")
        with open(blocker, "w") as f:
            f.write("x")
        p = self.expect_input_error("run", "--config", os.path.join(SOURCE, "configs", "tiny.json"),
                                    "--trace", self.trace("tiny-cnn.json"), "--out", blocker,
                                    fragments=("cannot create output directory",))
        self.assertNotIn("simulated", p.stderr)
        self.expect_input_error("run", "--out", "", fragments=("--out",))

    def test_names_are_utf8_and_csv_cells_are_quoted(self):
        bad = os.path.join(self.dir, "names.csv")
        with open(bad, "wb") as f:
            f.write(b"Layer, M, N, K\n\xff\xfe, 4, 4, 4\n")
        self.expect_input_error("validate", bad, fragments=("line 2", "not valid UTF-8"))
        name = 'a,b\n"c"'
        trace = self.write_trace([{"name": "=cmd()", "type": "linear", "in_features": 8, "out_features": 8},
                                  {"name": name, "type": "activation", "function": "relu", "input": [8]}])
        report, rows = self.simulate(os.path.join(SOURCE, "configs", "tiny.json"), trace)
        names = {row["layer"] for row in rows}
        self.assertEqual(names, {"'=cmd()", name})
        self.assertEqual(report["layers"][0]["layer"], "=cmd()")

    def test_simulated_time_limit_is_an_input_error(self):
        config = tiny_config(**{"chip/dram/gb_per_s_per_channel": 1e-3, "chip/clock_ghz": 100,
                                "chip/core/scratchpad/size_kib": 2 ** 30})
        trace = self.write_trace([{"name": "r", "type": "activation", "function": "relu",
                                   "input": [2 ** 20, 2 ** 20]}])
        p = self.expect_input_error("run", "--config", self.write_config(config), "--trace", trace,
                                    "--out", self.dir,
                                    fragments=("2^52", "trace.json: /layers/0: layer \"r\"", "config.json"))
        self.assertEqual(p.stdout, "")

    def test_work_scales_with_the_question_not_the_input(self):
        """A 65536^3 GEMM and tiny-cnn at batch 2^20 map to a bounded number of tasks: they finish
        within a generous time and report the full MAC count (minutes and gigabytes before)."""
        tiny = os.path.join(SOURCE, "configs", "tiny.json")
        linear = self.write_trace([{"name": "big", "type": "linear", "in_features": 65536,
                                    "out_features": 65536, "tokens": 65536}])
        report, _ = self.simulate(tiny, linear, "--phases", "fwd", out="linear")
        self.assertEqual(report["totals"]["macs"], 65536 ** 3)
        report, _ = self.simulate(tiny, self.trace("tiny-cnn.json"), "--batch", str(2 ** 20), out="batch")
        small, _ = self.simulate(tiny, self.trace("tiny-cnn.json"), "--batch", "1", out="one")
        self.assertEqual(report["totals"]["macs"], small["totals"]["macs"] * 2 ** 20)
        # 1024 cores all streaming one big tensor through DRAM (a minute before the step budget).
        many = self.write_config(tiny_config(**{"chip/cores": 1024}), "many.json")
        dropout = self.write_trace([{"name": "d", "type": "dropout", "input": [2 ** 30]}], "dropout.json")
        report, _ = self.simulate(many, dropout, "--phases", "fwd", out="many")
        self.assertGreater(report["totals"]["cycles"], 0)


if __name__ == "__main__":
    LPTSIM, SOURCE = sys.argv[1], sys.argv[2]
    unittest.main(argv=[sys.argv[0], *sys.argv[3:]], verbosity=2)
