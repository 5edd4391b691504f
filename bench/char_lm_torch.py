"""examples/char_lm.py's character model, trained the same way in PyTorch (CPU), as a peer.

Same corpus and split (`pydoc_data.topics`, last 10% held out), same vocabulary, embedding
size, LSTM sizes, seq_len, batch, initialization ranges, Adam and learning rate, global-norm
clip, truncated BPTT with the final states carried into the next window, per-epoch held-out
evaluation and the same halve-on-plateau schedule (imported from the example), for the same
wall-clock budget. Defaults come from `examples/char_lm.py` itself, so the two stay in step.

    python examples/char_lm.py                  # symrnn: prints the held-out perplexity
    python bench/char_lm_torch.py               # PyTorch: the same, -> bench/results/...json
    python bench/char_lm_torch.py --minutes 0.3 # a short check

Writes `bench/results/char_lm_torch.json` (or `--out`): the settings, every epoch's record
and the final and best held-out perplexity. Zoneout has no PyTorch counterpart here.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for _p in (ROOT, os.path.join(ROOT, "examples")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import char_lm  # examples/char_lm.py: its defaults and its lr schedule
import numpy as np

from symrnn.data import CharVocab, pydoc_text, split_holdout
from symrnn.train import batchify, windows

SAME = ("hidden", "embed", "seq_len", "batch", "lr", "clip", "dropout", "epochs", "minutes",
        "seed")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in SAME:
        p.add_argument(f"--{name.replace('_', '-')}", default=None,
                       type=str if name == "hidden" else
                       int if name in ("embed", "seq_len", "batch", "epochs", "seed") else float,
                       help="default: examples/char_lm.py's")
    p.add_argument("--quick", action="store_true", help="char_lm.py --quick's settings")
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads (default: PyTorch's, one per core)")
    p.add_argument("--out", default=os.path.join(HERE, "results", "char_lm_torch.json"))
    args = p.parse_args(argv)
    base = char_lm.parse_args(["--quick"] if args.quick else [])
    for name in SAME:
        if getattr(args, name) is None:
            setattr(args, name, getattr(base, name))
    if base.zoneout:
        p.error("char_lm.py's default zoneout is not 0; this peer has no zoneout")
    return args


class _LR:
    """What char_lm.halve_on_plateau reads and sets (`optimizer.lr`), for a torch optimizer."""

    def __init__(self, opt):
        self.opt = opt

    @property
    def lr(self) -> float:
        return self.opt.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        for group in self.opt.param_groups:
            group["lr"] = value


def build(torch, vocab: int, args):
    nn = torch.nn
    hidden = [int(h) for h in args.hidden.split(",")]

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(vocab, args.embed)
            sizes = [args.embed, *hidden]
            self.layers = nn.ModuleList(nn.LSTM(i, h) for i, h in zip(sizes, hidden))
            self.drop = nn.Dropout(args.dropout)
            self.decoder = nn.Linear(hidden[-1], vocab)

        def forward(self, x, states):
            y, finals = self.embed(x), []
            for layer, state in zip(self.layers, states):
                y, state = layer(y, state)
                y = self.drop(y)  # symrnn's dropout[l]: on every layer's output
                finals.append(state)
            return self.decoder(y), finals

    model = Model()
    with torch.no_grad():  # symrnn's init_params ranges: 1/sqrt(H) for the LSTM (PyTorch's
        # own), 1/sqrt(fan_in) for the decoder (PyTorch's own) and 1/sqrt(embed) for the
        # embedding (PyTorch draws N(0, 1) there)
        bound = 1 / math.sqrt(args.embed)
        model.embed.weight.uniform_(-bound, bound)
    return model, hidden


def run(torch, model, hidden, stream, args, train: bool, opt=None, deadline=None):
    """One pass over `stream` (T_total, N); mean loss per window, windows done."""
    model.train(train)
    zeros = [(torch.zeros(1, args.batch, h), torch.zeros(1, args.batch, h)) for h in hidden]
    states, losses = zeros, []
    for x, y in windows(stream, args.seq_len):
        x, y = torch.from_numpy(x.astype(np.int64)), torch.from_numpy(y.astype(np.int64))
        with torch.set_grad_enabled(train):
            logits, finals = model(x, states)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                     y.reshape(-1))
        if train:
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
        states = [(h.detach(), c.detach()) for h, c in finals]  # truncated BPTT
        losses.append(float(loss.detach()))
        if deadline is not None and time.perf_counter() > deadline:
            break
    return float(np.mean(losses)) if losses else math.nan, len(losses)


def main(argv=None) -> float:
    args = parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    text = pydoc_text()
    vocab = CharVocab.from_text(text)
    tokens = vocab.encode(text[:40_000] if args.quick else text)
    train_tokens, valid_tokens = split_holdout(tokens, 0.1)
    train_stream, valid_stream = batchify(train_tokens, args.batch), batchify(valid_tokens,
                                                                              args.batch)
    model, hidden = build(torch, len(vocab), args)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads; corpus "
          f"{len(tokens):,} characters, vocabulary {len(vocab)}; LSTM {hidden}, embedding "
          f"{args.embed}, seq_len {args.seq_len}, batch {args.batch}, {args.minutes:g} minutes")
    on_epoch, lr, epochs = char_lm.halve_on_plateau({}), _LR(opt), []
    start = time.perf_counter()
    deadline = start + args.minutes * 60
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        loss, n = run(torch, model, hidden, train_stream, args, True, opt, deadline)
        seconds = time.perf_counter() - t0
        valid_loss, _ = run(torch, model, hidden, valid_stream, args, False)
        record = {"epoch": epoch, "loss": loss, "windows": n, "seconds": seconds,
                  "tokens_per_s": n * args.batch * args.seq_len / seconds, "lr": lr.lr,
                  "valid_loss": valid_loss, "valid_ppl": math.exp(min(valid_loss, 700.0))}
        epochs.append(record)
        print(f"epoch {epoch}: loss {loss:.4f} ({n} windows, {seconds:.1f} s, "
              f"{record['tokens_per_s']:.0f} tok/s)  valid ppl {record['valid_ppl']:.3f}")
        if time.perf_counter() > deadline or on_epoch(record, lr):
            break
    minutes = (time.perf_counter() - start) / 60
    best = min(r["valid_ppl"] for r in epochs)
    print(f"held-out perplexity {epochs[-1]['valid_ppl']:.3f} (best {best:.3f}) after "
          f"{len(epochs)} epochs, {minutes:.1f} minutes")
    result = {"peer": "pytorch", "torch": torch.__version__,
              "threads": torch.get_num_threads(), "machine": platform.machine(),
              "cpus": os.cpu_count(), "date": datetime.datetime.now().isoformat(" ", "seconds"),
              "settings": {k: getattr(args, k) for k in (*SAME, "quick")},
              "corpus_chars": len(tokens), "vocab": len(vocab), "minutes": minutes,
              "valid_ppl": epochs[-1]["valid_ppl"], "best_valid_ppl": best, "epochs": epochs}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {args.out}")
    return best


if __name__ == "__main__":
    main()
