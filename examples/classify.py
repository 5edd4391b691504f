"""An acceptor RNN: does a sequence of digits contain the pattern 1, 2, 3 (in a row)?

A GRU reads the whole sequence; its last hidden state goes through a dense layer to two
classes. The task is generated (balanced: half the sequences have the pattern planted at a
random place, the other half are resampled until they lack it). This example writes its own
training loop with the lower-level API: `bind_model`, `init_params`, `Adam`,
`clip_global_norm`, `forward`/`backward`.

    python examples/classify.py            # about a minute on 2 cores
    python examples/classify.py --quick    # seconds
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

import symrnn as sym

PATTERN = np.array([1, 2, 3])
VOCAB = 10


def contains(seq: np.ndarray) -> bool:
    windows = np.lib.stride_tricks.sliding_window_view(seq, len(PATTERN))
    return bool((windows == PATTERN).all(1).any())


def make_task(count: int, seq_len: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """`(data (T, count), labels (count,))`, time-major like every symrnn input."""
    seqs, labels = np.empty((count, seq_len), np.int32), np.arange(count) % 2
    for i, label in enumerate(labels):
        seq = rng.integers(0, VOCAB, seq_len)
        while contains(seq):
            seq = rng.integers(0, VOCAB, seq_len)
        if label:
            at = rng.integers(0, seq_len - len(PATTERN) + 1)
            seq[at:at + len(PATTERN)] = PATTERN
        seqs[i] = seq
    return np.ascontiguousarray(seqs.T), labels.astype(np.int32)


def build(seq_len: int, batch: int, hidden: int):
    """`Group([mean loss, logits])`: embedding -> GRU -> last state -> dense -> 2 classes."""
    data = sym.Variable("data", dtype="int32")
    label = sym.Variable("label", shape=(batch,), dtype="int32")
    x = sym.embedding(data, VOCAB, 16, name="embed")
    rnn = sym.RNNFactory([hidden], data_dim=16, typ="gru", name="acceptor")
    _, last_h = rnn.step(x, seq_len=seq_len)
    logits = sym.dense(last_h[-1], 2, name="classifier")
    return sym.Group([sym.softmax_ce_mean(logits, label), logits])


def accuracy(ex, data: np.ndarray, labels: np.ndarray) -> float:
    batch, hits = ex.arg_dict["label"].shape[0], 0
    for i in range(0, len(labels) - batch + 1, batch):
        _, logits = ex.forward(data=data[:, i:i + batch], label=labels[i:i + batch])
        hits += int((logits.argmax(1) == labels[i:i + batch]).sum())
    return hits / (len(labels) // batch * batch)


def main(argv=None) -> float:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seq-len", type=int, default=24)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--backend", default="cpu", choices=["cpu", "reference", "cuda"])
    p.add_argument("--quick", action="store_true", default=bool(os.environ.get("SYMRNN_QUICK")))
    args = p.parse_args(argv)
    if args.quick:
        args.seq_len, args.hidden, args.steps = 10, 16, 40

    rng = np.random.default_rng(0)
    test_x, test_y = make_task(8 * args.batch, args.seq_len, rng)
    net = build(args.seq_len, args.batch, args.hidden)
    ex = sym.bind_model(net, args.backend, data=(args.seq_len, args.batch),
                        label=(args.batch,))
    sym.init_params(ex, seed=0)
    opt, zeros = sym.Adam(3e-3), np.zeros((args.batch, 2), np.float32)
    print(f"GRU [{args.hidden}] over {args.seq_len} digits; does 1, 2, 3 occur? "
          f"chance accuracy {accuracy(ex, test_x, test_y):.3f}")
    t0 = time.perf_counter()
    for step in range(1, args.steps + 1):
        x, y = make_task(args.batch, args.seq_len, rng)
        loss, _ = ex.forward(is_train=True, data=x, label=y)
        ex.backward([np.ones((), np.float32), zeros])
        sym.clip_global_norm(ex.grad_dict, 5.0)
        opt.step(ex)
        if step % max(args.steps // 6, 1) == 0:
            print(f"step {step:4d}: loss {float(loss):.4f}  test accuracy "
                  f"{accuracy(ex, test_x, test_y):.3f}")
    acc = accuracy(ex, test_x, test_y)
    print(f"test accuracy {acc:.3f} after {args.steps} steps, "
          f"{time.perf_counter() - t0:.1f} s")
    return acc


if __name__ == "__main__":
    main()
