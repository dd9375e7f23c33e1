#!/usr/bin/python3
"""Writes an lptsim layer trace (docs/trace-format.md) for a PyTorch model.

The model runs once on a random sample input; forward hooks on the leaf
modules record every layer call with its real input shape, in execution order.
Only shapes matter, so the weights stay random (nothing is downloaded).

Residual adds have no module in torchvision (Bottleneck/BasicBlock do
`out += identity`, InvertedResidual `return x + self.conv(x)`), so hooks alone
cannot see them. A TorchFunctionMode watches every torch call made *outside*
the leaf modules and records tensor-tensor add/mul as `eltwise` layers, at the
point where they run. We prefer this to torch.fx symbolic tracing because it
observes the ops actually executed (fx cannot trace data-dependent control flow
and reports no shapes without a second pass), and it keeps the hooks as the one
source of order.

Run with Debian's interpreter, which has python3-torch and python3-torchvision:
  /usr/bin/python3 scripts/trace_from_torch.py --model resnet50 --batch 32 \
      --out traces/resnet50.json
"""

import argparse
import json
import math
import sys

import torch
import torchvision
from torch import nn
from torch.overrides import TorchFunctionMode

from trace_json import format_trace

ACTIVATIONS = {
    nn.ReLU: "relu",
    nn.ReLU6: "relu6",
    nn.GELU: "gelu",
    nn.Tanh: "tanh",
    nn.Sigmoid: "sigmoid",
    nn.SiLU: "silu",
    nn.Hardswish: "hardswish",
}

# Leaf modules that move or reshape data without arithmetic the simulator models.
NO_WORK_MODULES = (nn.Identity, nn.Flatten, nn.Unflatten)

ADD_FUNCTIONS = {"add", "add_", "__add__", "__iadd__", "__radd__"}
MUL_FUNCTIONS = {"mul", "mul_", "__mul__", "__imul__", "__rmul__"}


class UnsupportedModel(Exception):
    pass


def per_sample(shape):
    """Drops the batch dimension (the sample input always has batch first)."""
    return [int(d) for d in shape[1:]]


def pair(value):
    if isinstance(value, int):
        return [value, value]
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return [int(v) for v in value]
    raise UnsupportedModel(f"expected an int or a pair of ints, got {value!r}")


def conv_layer(module, x):
    if not isinstance(module.padding, (int, tuple, list)):
        raise UnsupportedModel(f"padding={module.padding!r} (only explicit padding is representable)")
    in_channels = int(x.shape[1])
    layer = {"type": "conv2d", "input": per_sample(x.shape)}
    depthwise = module.groups == in_channels and module.groups > 1
    if depthwise:
        layer["type"] = "depthwise_conv2d"
    else:
        layer["out_channels"] = module.out_channels
    layer["kernel"] = pair(module.kernel_size)
    # Defaults are left out, as a person would write the trace.
    for key, value, default in (("stride", module.stride, [1, 1]),
                                ("padding", module.padding, [0, 0]),
                                ("dilation", module.dilation, [1, 1])):
        if pair(value) != default:
            layer[key] = pair(value)
    if depthwise and module.out_channels != in_channels:
        layer["channel_multiplier"] = module.out_channels // in_channels
    if not depthwise and module.groups != 1:
        layer["groups"] = module.groups
    if module.bias is not None:
        layer["bias"] = True
    return [layer]


def linear_layer(module, x):
    tokens = math.prod(int(d) for d in x.shape[1:-1])
    layer = {"type": "linear", "in_features": module.in_features, "out_features": module.out_features}
    if tokens != 1:
        layer["tokens"] = tokens
    if module.bias is not None:
        layer["bias"] = True
    return [layer]


def pool_layer(module, x, y):
    if getattr(module, "ceil_mode", False):
        raise UnsupportedModel("ceil_mode=True pooling (the trace format uses floor)")
    mode = "max" if isinstance(module, nn.MaxPool2d) else "avg"
    layer = {"type": "pool", "mode": mode, "input": per_sample(x.shape)}
    if isinstance(module, nn.MaxPool2d) and pair(module.dilation) != [1, 1]:
        raise UnsupportedModel("dilated max pooling")
    if isinstance(module, nn.AvgPool2d) and not module.count_include_pad and pair(module.padding) != [0, 0]:
        raise UnsupportedModel("avg pooling with count_include_pad=False and padding")
    layer["kernel"] = pair(module.kernel_size)
    stride = pair(module.stride if module.stride is not None else module.kernel_size)
    if stride != layer["kernel"]:
        layer["stride"] = stride
    if pair(module.padding) != [0, 0]:
        layer["padding"] = pair(module.padding)
    return [layer]


def adaptive_avg_pool_layer(module, x, y):
    in_h, in_w = int(x.shape[2]), int(x.shape[3])
    out_h, out_w = int(y.shape[2]), int(y.shape[3])
    if (out_h, out_w) == (1, 1):
        return [{"type": "pool", "mode": "avg", "global": True, "input": per_sample(x.shape)}]
    if (out_h, out_w) == (in_h, in_w):
        # VGG/AlexNet at 224x224: the adaptive pool is an identity, no arithmetic.
        return []
    if in_h % out_h or in_w % out_w:
        raise UnsupportedModel(f"adaptive pooling {in_h}x{in_w} -> {out_h}x{out_w} has uneven windows")
    kernel = [in_h // out_h, in_w // out_w]
    return [{"type": "pool", "mode": "avg", "input": per_sample(x.shape), "kernel": kernel}]


def lstm_layers(module, x):
    if module.proj_size:
        raise UnsupportedModel("LSTM with proj_size")
    seq_len = int(x.shape[1] if module.batch_first else x.shape[0])
    directions = 2 if module.bidirectional else 1
    layers = []
    # The trace format describes one LSTM layer per entry; a stacked nn.LSTM
    # becomes one entry per layer, the upper ones fed by all directions.
    for index in range(module.num_layers):
        layer = {"type": "lstm",
                 "input_size": module.input_size if index == 0 else module.hidden_size * directions,
                 "hidden_size": module.hidden_size, "seq_len": seq_len}
        if module.bidirectional:
            layer["bidirectional"] = True
        if not module.bias:
            layer["bias"] = False
        layers.append((f"l{index}", layer))
    return layers


def describe(module, inputs, output):
    """The trace layers for one leaf-module call, as (name suffix, layer) pairs."""
    x = inputs[0] if inputs else None
    if isinstance(module, nn.Conv2d):
        layers = conv_layer(module, x)
    elif isinstance(module, nn.Linear):
        layers = linear_layer(module, x)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        layers = [{"type": "batchnorm", "input": per_sample(x.shape)}]
    elif type(module) in ACTIVATIONS:
        layers = [{"type": "activation", "function": ACTIVATIONS[type(module)],
                   "input": per_sample(x.shape)}]
    elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        layers = pool_layer(module, x, output)
    elif isinstance(module, nn.AdaptiveAvgPool2d):
        layers = adaptive_avg_pool_layer(module, x, output)
    elif isinstance(module, nn.Dropout):
        layers = [{"type": "dropout", "input": per_sample(x.shape)}]
    elif isinstance(module, nn.LayerNorm):
        layers = [{"type": "layernorm", "input": per_sample(x.shape)}]
    elif isinstance(module, nn.Softmax):
        layers = [{"type": "softmax", "input": per_sample(x.shape)}]
    elif isinstance(module, nn.Embedding):
        layers = [{"type": "embedding", "num_embeddings": module.num_embeddings,
                   "dim": module.embedding_dim, "tokens": math.prod(per_sample(x.shape))}]
    elif isinstance(module, nn.LSTM):
        return lstm_layers(module, x)
    elif isinstance(module, NO_WORK_MODULES):
        return []
    else:
        raise UnsupportedModel(f"no trace mapping for module type {type(module).__name__}")
    return [(None, layer) for layer in layers]


class Recorder(TorchFunctionMode):
    """Collects trace layers in execution order: leaf-module calls via hooks,
    tensor-tensor add/mul made between leaf modules via the function mode."""

    def __init__(self, model):
        super().__init__()
        self.layers = []
        self.calls = {}  # name -> times seen, to keep names unique
        self.active = []  # paths of the modules currently running, outermost first
        self.leaf_depth = 0
        self.handles = []
        for path, module in model.named_modules():
            leaf = next(module.children(), None) is None
            self.handles.append(module.register_forward_pre_hook(self._make_enter(path, leaf)))
            self.handles.append(module.register_forward_hook(self._make_exit(path, leaf)))

    def _add(self, name, layer):
        # A module called several times (torchvision reuses one ReLU per block)
        # gets ":2", ":3" on its later calls.
        seen = self.calls.get(name, 0) + 1
        self.calls[name] = seen
        self.layers.append({"name": name if seen == 1 else f"{name}:{seen}", **layer})

    def _make_enter(self, path, leaf):
        def enter_hook(module, inputs):
            self.active.append(path)
            self.leaf_depth += leaf
        return enter_hook

    def _make_exit(self, path, leaf):
        def exit_hook(module, inputs, output):
            self.active.pop()
            self.leaf_depth -= leaf
            if leaf:
                for suffix, layer in describe(module, inputs, output):
                    self._add(path if suffix is None else f"{path}.{suffix}", layer)
        return exit_hook

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", "")
        if self.leaf_depth == 0 and (name in ADD_FUNCTIONS or name in MUL_FUNCTIONS):
            operands = [a for a in args[:2] if isinstance(a, torch.Tensor)]
            if len(operands) == 2 and isinstance(result, torch.Tensor):
                op = "add" if name in ADD_FUNCTIONS else "mul"
                # Named after the module whose forward() does it, e.g. layer1.0.add.
                owner = self.active[-1] if self.active and self.active[-1] else ""
                self._add(f"{owner}.{op}" if owner else op,
                          {"type": "eltwise", "op": op, "input": per_sample(result.shape)})
        return result

    def remove(self):
        for handle in self.handles:
            handle.remove()


def trace_model(model, sample):
    model.eval()  # shapes only; eval keeps BatchNorm happy with one sample
    recorder = Recorder(model)
    try:
        with torch.no_grad(), recorder:
            model(sample)
    finally:
        recorder.remove()
    return recorder.layers


def torchvision_trace(model_name, batch, input_size):
    constructor = getattr(torchvision.models, model_name, None)
    if constructor is None or not callable(constructor):
        raise UnsupportedModel(f"torchvision.models has no model named {model_name!r}")
    torch.manual_seed(0)
    model = constructor(weights=None)
    sample = torch.randn(1, 3, input_size, input_size)
    layers = trace_model(model, sample)
    source = (f"torchvision {torchvision.__version__.split('a')[0].split('+')[0]} "
              f"{model_name}(weights=None), {input_size}x{input_size} RGB input, batch {batch}; "
              f"generated by scripts/trace_from_torch.py")
    return {"network": model_name, "source": source, "batch": batch, "layers": layers}


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="torchvision model name, e.g. resnet50")
    parser.add_argument("--batch", type=int, default=32, help="mini-batch size written to the trace")
    parser.add_argument("--input-size", type=int, default=224, help="square input image side")
    parser.add_argument("--out", help="output file (default: standard output)")
    args = parser.parse_args(argv)
    if args.batch < 1 or args.input_size < 1:
        parser.error("--batch and --input-size must be >= 1")
    try:
        trace = torchvision_trace(args.model, args.batch, args.input_size)
    except UnsupportedModel as error:
        print(f"trace_from_torch: {args.model}: {error}", file=sys.stderr)
        return 2
    text = format_trace(trace)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
