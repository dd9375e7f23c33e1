"""Writes lptsim traces in the layout of the hand-written ones: one layer per
line, so traces are easy to read and to diff."""

import json


def format_trace(trace):
    header = ",\n".join(f"  {json.dumps(key)}: {json.dumps(trace[key])}"
                        for key in ("network", "source", "batch"))
    body = ",\n".join("    " + json.dumps(layer, separators=(", ", ": ")) for layer in trace["layers"])
    return "{\n" + header + ',\n  "layers": [\n' + body + "\n  ]\n}\n"
