#!/usr/bin/python3
"""Writes the language and speech reference traces (no PyTorch needed):
traces/bert_base.json, traces/transformer_base.json, traces/lstm_speech.json.

The layer lists follow the papers cited in each trace's "source"; the CNN
traces come from scripts/trace_from_torch.py instead. Run from anywhere:
  python3 scripts/make_reference_traces.py [--out-dir traces]
"""

import argparse
import os
import sys

from trace_json import format_trace


def linear(name, in_features, out_features, tokens, bias=True):
    layer = {"name": name, "type": "linear", "in_features": in_features, "out_features": out_features}
    if tokens != 1:
        layer["tokens"] = tokens
    if bias:
        layer["bias"] = True
    return layer


def elementwise(name, type_, shape, **fields):
    return {"name": name, "type": type_, **fields, "input": list(shape)}


def attention(prefix, heads, d_model, q_len, kv_len, attention_dropout):
    """Multi-head attention as Q/K/V/O projections around two batched matmuls
    (one product per head): scores = Q·Kᵀ (q_len x kv_len over d_head), then
    context = softmax(scores)·V (q_len x d_head over kv_len)."""
    d_head = d_model // heads
    layers = [
        linear(f"{prefix}.query", d_model, d_model, q_len),
        linear(f"{prefix}.key", d_model, d_model, kv_len),
        linear(f"{prefix}.value", d_model, d_model, kv_len),
        {"name": f"{prefix}.scores", "type": "matmul", "m": q_len, "n": kv_len, "k": d_head, "count": heads},
        elementwise(f"{prefix}.softmax", "softmax", [heads, q_len, kv_len]),
    ]
    if attention_dropout:
        layers.append(elementwise(f"{prefix}.attention_dropout", "dropout", [heads, q_len, kv_len]))
    layers += [
        {"name": f"{prefix}.context", "type": "matmul", "m": q_len, "n": d_head, "k": kv_len, "count": heads},
        linear(f"{prefix}.output", d_model, d_model, q_len),
    ]
    return layers


def residual_end(prefix, tokens, d_model):
    """Post-LN sublayer tail used by both BERT and the original Transformer:
    dropout on the sublayer output, residual add, layer norm."""
    shape = [tokens, d_model]
    return [elementwise(f"{prefix}.dropout", "dropout", shape),
            elementwise(f"{prefix}.add", "eltwise", shape, op="add"),
            elementwise(f"{prefix}.layernorm", "layernorm", shape)]


def feed_forward(prefix, tokens, d_model, d_ff, activation):
    return [linear(f"{prefix}.intermediate", d_model, d_ff, tokens),
            elementwise(f"{prefix}.{activation}", "activation", [tokens, d_ff], function=activation),
            linear(f"{prefix}.output", d_ff, d_model, tokens)]


def bert_base():
    # Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers for
    # Language Understanding", NAACL 2019: L=12, H=768, A=12, FFN 4H, WordPiece
    # vocabulary 30522, 512 positions, 2 segment types; 110 M parameters.
    seq, hidden, heads, ffn, layers_count = 128, 768, 12, 3072, 12
    tokens_shape = [seq, hidden]
    layers = [
        {"name": "embeddings.word", "type": "embedding", "num_embeddings": 30522, "dim": hidden, "tokens": seq},
        {"name": "embeddings.position", "type": "embedding", "num_embeddings": 512, "dim": hidden, "tokens": seq},
        {"name": "embeddings.token_type", "type": "embedding", "num_embeddings": 2, "dim": hidden, "tokens": seq},
        elementwise("embeddings.add_position", "eltwise", tokens_shape, op="add"),
        elementwise("embeddings.add_token_type", "eltwise", tokens_shape, op="add"),
        elementwise("embeddings.layernorm", "layernorm", tokens_shape),
        elementwise("embeddings.dropout", "dropout", tokens_shape),
    ]
    for i in range(layers_count):
        p = f"encoder.{i}"
        layers += attention(f"{p}.attention", heads, hidden, seq, seq, attention_dropout=True)
        layers += residual_end(f"{p}.attention", seq, hidden)
        layers += feed_forward(f"{p}.ffn", seq, hidden, ffn, "gelu")
        layers += residual_end(f"{p}.ffn", seq, hidden)
    # The pooler reads the [CLS] token only.
    layers += [linear("pooler.dense", hidden, hidden, 1),
               elementwise("pooler.tanh", "activation", [hidden], function="tanh")]
    return {
        "network": "bert-base",
        "source": ("Devlin et al., BERT, NAACL 2019: BERT-base (12 layers, hidden 768, 12 heads, "
                   "FFN 3072, vocab 30522) encoder and pooler, sequence length 128, batch 32 (the "
                   "paper's fine-tuning batch); no task head; attention-mask add and 1/sqrt(d) "
                   "scaling omitted (folded into the score matmul)"),
        "batch": 32,
        "layers": layers,
    }


def transformer_base():
    # Vaswani et al., "Attention Is All You Need", NeurIPS 2017, base model:
    # N=6 encoder and 6 decoder layers, d_model 512, 8 heads, d_ff 2048,
    # dropout 0.1 on sublayer outputs and embedding sums, shared 37000-token
    # BPE vocabulary (WMT14 En-De). Batches held ~25000 source and ~25000
    # target tokens: 768 sentence pairs of 32 tokens each is 24576 of each.
    seq, d_model, heads, d_ff, depth, vocab = 32, 512, 8, 2048, 6, 37000
    shape = [seq, d_model]

    def embed(prefix):
        return [{"name": f"{prefix}.embedding", "type": "embedding", "num_embeddings": vocab,
                 "dim": d_model, "tokens": seq},
                elementwise(f"{prefix}.add_positional", "eltwise", shape, op="add"),
                elementwise(f"{prefix}.embedding_dropout", "dropout", shape)]

    layers = embed("encoder")
    for i in range(depth):
        p = f"encoder.{i}"
        layers += attention(f"{p}.self_attention", heads, d_model, seq, seq, attention_dropout=False)
        layers += residual_end(f"{p}.self_attention", seq, d_model)
        layers += feed_forward(f"{p}.ffn", seq, d_model, d_ff, "relu")
        layers += residual_end(f"{p}.ffn", seq, d_model)
    layers += embed("decoder")
    for i in range(depth):
        p = f"decoder.{i}"
        # Causal masking hides half the scores but implementations compute them all.
        layers += attention(f"{p}.self_attention", heads, d_model, seq, seq, attention_dropout=False)
        layers += residual_end(f"{p}.self_attention", seq, d_model)
        layers += attention(f"{p}.cross_attention", heads, d_model, seq, seq, attention_dropout=False)
        layers += residual_end(f"{p}.cross_attention", seq, d_model)
        layers += feed_forward(f"{p}.ffn", seq, d_model, d_ff, "relu")
        layers += residual_end(f"{p}.ffn", seq, d_model)
    layers += [linear("generator.projection", d_model, vocab, seq, bias=False),
               elementwise("generator.softmax", "softmax", [seq, vocab])]
    return {
        "network": "transformer-base",
        "source": ("Vaswani et al., Attention Is All You Need, NeurIPS 2017: Transformer base "
                   "(6+6 layers, d_model 512, 8 heads, d_ff 2048, shared BPE vocab 37000), "
                   "source and target length 32, batch 768 sentence pairs (~25k tokens each side, "
                   "as in the paper); the paper ties both embeddings and the output projection, "
                   "which the trace format cannot express, so they count as three weight tensors"),
        "batch": 768,
        "layers": layers,
    }


def lstm_speech():
    # A bidirectional-LSTM acoustic model in the style of Graves, Jaitly and
    # Mohamed, "Hybrid speech recognition with deep bidirectional LSTM", ASRU
    # 2013, and the BLSTM CTC models of Amodei et al., "Deep Speech 2", ICML
    # 2016: 40-dim log-mel filterbank frames at a 10 ms hop, 4 BLSTM layers of
    # 320 cells per direction, a linear layer to 29 CTC labels (26 letters,
    # space, apostrophe, blank). The sizes are lptsim's choice, not one paper's.
    frames, features, hidden, depth, labels = 300, 40, 320, 4, 29
    layers = []
    for i in range(depth):
        layers.append({"name": f"blstm.{i}", "type": "lstm",
                       "input_size": features if i == 0 else 2 * hidden,
                       "hidden_size": hidden, "seq_len": frames, "bidirectional": True})
        if i + 1 < depth:
            layers.append(elementwise(f"blstm.{i}.dropout", "dropout", [frames, 2 * hidden]))
    layers += [linear("output", 2 * hidden, labels, frames),
               elementwise("output.softmax", "softmax", [frames, labels])]
    return {
        "network": "lstm-speech",
        "source": ("BLSTM acoustic model after Graves, Jaitly and Mohamed (ASRU 2013) and Deep "
                   "Speech 2 (Amodei et al., ICML 2016): 40-dim log-mel features, 3 s utterances "
                   "(300 frames at 10 ms), 4 bidirectional LSTM layers of 320 cells per "
                   "direction, linear to 29 CTC labels; sizes chosen for lptsim; batch 32"),
        "batch": 32,
        "layers": layers,
    }


TRACES = {"bert_base.json": bert_base, "transformer_base.json": transformer_base,
          "lstm_speech.json": lstm_speech}


def main(argv):
    default_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "traces")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", default=os.path.normpath(default_dir))
    args = parser.parse_args(argv)
    for file_name, build in TRACES.items():
        with open(os.path.join(args.out_dir, file_name), "w") as f:
            f.write(format_trace(build()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
