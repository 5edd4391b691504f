"""A character language model on the text of CPython's `pydoc_data.topics` (no download).

Trains an LSTM with truncated BPTT on the first 90% of the corpus, reports the perplexity on
the held-out last 10% after every epoch (halving the learning rate when it stops improving),
and samples text from the model.

    python examples/char_lm.py              # the defaults: at most 12 minutes of training
    python examples/char_lm.py --quick      # seconds: a tiny model on a slice of the text
"""
from __future__ import annotations

import argparse
import os
import time

import symrnn as sym
from symrnn.data import CharVocab, pydoc_text, split_holdout


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", default="256", help="per-layer sizes, e.g. 256 or 256,256")
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--clip", type=float, default=5.0)
    p.add_argument("--zoneout", type=float, default=0.0)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--minutes", type=float, default=12.0, help="training time budget")
    p.add_argument("--backend", default="cpu", choices=["cpu", "reference", "cuda"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sample-length", type=int, default=400)
    p.add_argument("--plot", default=None, help="write the loss curve here (matplotlib)")
    p.add_argument("--quick", action="store_true",
                   default=bool(os.environ.get("SYMRNN_QUICK")),
                   help="a tiny model on a slice of the corpus (also SYMRNN_QUICK=1)")
    args = p.parse_args(argv)
    if args.quick:
        args.hidden, args.embed, args.seq_len, args.batch = "32", 16, 16, 8
        args.epochs, args.minutes, args.sample_length = 1, 0.5, 80
    return args


def halve_on_plateau(best: dict, max_halvings: int = 5):
    """An `on_epoch` callback: halves the learning rate when held-out loss stops falling,
    and stops training after `max_halvings` halvings."""
    def on_epoch(record, optimizer):
        if record["valid_loss"] >= best.get("loss", float("inf")):
            optimizer.lr *= 0.5
            best["halvings"] = best.get("halvings", 0) + 1
            print(f"  held-out loss did not improve: lr -> {optimizer.lr:g}")
        best["loss"] = min(record["valid_loss"], best.get("loss", float("inf")))
        return best.get("halvings", 0) > max_halvings
    return on_epoch


def main(argv=None) -> float:
    args = parse_args(argv)
    text = pydoc_text()
    vocab = CharVocab.from_text(text)
    tokens = vocab.encode(text[:40_000] if args.quick else text)
    train_tokens, valid_tokens = split_holdout(tokens, 0.1)
    print(f"corpus: {len(tokens):,} characters, vocabulary {len(vocab)}, "
          f"train {len(train_tokens):,} / held-out {len(valid_tokens):,}")

    hidden = [int(h) for h in args.hidden.split(",")]
    lm = sym.CharLM(len(vocab), args.embed, hidden, dropout=args.dropout,
                    zoneout=args.zoneout, name="lm")
    t0 = time.perf_counter()
    ex, links = lm.bind(args.seq_len, args.batch, args.backend, seed=args.seed)
    vex, _ = lm.bind(args.seq_len, args.batch, args.backend, train=False, head="loss")
    print(f"compiled in {time.perf_counter() - t0:.1f} s; LSTM {hidden}, embedding "
          f"{args.embed}, seq_len {args.seq_len}, batch {args.batch}")
    sym.init_params(ex, seed=args.seed)

    t0 = time.perf_counter()
    history = sym.train(
        ex, sym.batchify(train_tokens, args.batch), links, epochs=args.epochs,
        optimizer=sym.Adam(args.lr), clip=args.clip,
        valid=(vex, sym.batchify(valid_tokens, args.batch)),
        max_seconds=args.minutes * 60, on_epoch=halve_on_plateau({}), plot=args.plot)
    minutes = (time.perf_counter() - t0) / 60
    best = min(r["valid_ppl"] for r in history.epochs)
    print(f"held-out perplexity {history.last['valid_ppl']:.3f} (best {best:.3f}) after "
          f"{len(history.epochs)} epochs, {minutes:.1f} minutes")
    print("---- sample ----")
    print(lm.sample(ex.arg_dict, vocab, prime="The ", length=args.sample_length,
                    seed=args.seed, backend=args.backend))
    return best


if __name__ == "__main__":
    main()
