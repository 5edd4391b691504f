"""`symrnn demo`: compare fused and unrolled, train a character model, sample text."""
from __future__ import annotations

import argparse
import time

from symrnn.cli.common import BACKEND_CHOICES, positive, positive_float, seed, stack_symbol


def configure_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--minutes", type=positive_float, default=2.5,
                   help="training time budget in minutes (default 2.5)")
    p.add_argument("--backend", default="cpu", choices=BACKEND_CHOICES)
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--sample-length", type=positive, default=300)


def run_demo(args) -> int:
    import symrnn as sym
    from symrnn.compare import compare
    from symrnn.data import CharVocab, pydoc_text, split_holdout

    print("1. A 2-layer LSTM [256, 128] with zoneout 0.1 (training mode), compiled fused and "
          "unrolled from one symbol; same weights, same seed.\n")
    net = stack_symbol(argparse.Namespace(hidden=[256, 128], zoneout=[0.1], dropout=[0.0],
                                          typ="lstm", dropout_mode="step"), 20, 64)
    compare(net, backend=args.backend, seed=args.seed, repeat=3, data=(20, 32, 64))

    text = pydoc_text()
    vocab = CharVocab.from_text(text)
    train_tokens, valid_tokens = split_holdout(vocab.encode(text), 0.1)
    print(f"\n2. A character language model on pydoc_data.topics ({len(text):,} characters, "
          f"vocabulary {len(vocab)}): LSTM [256], {args.minutes:g} minutes.\n")
    lm = sym.CharLM(len(vocab), 64, [256], name="lm")
    ex, links = lm.bind(64, 32, args.backend, seed=args.seed)
    vex, _ = lm.bind(64, 32, args.backend, train=False, head="loss")
    sym.init_params(ex, seed=args.seed)
    t0 = time.perf_counter()
    history = sym.train(ex, sym.batchify(train_tokens, 32), links, epochs=1000,
                        optimizer=sym.Adam(3e-3), clip=5.0, max_seconds=args.minutes * 60,
                        valid=(vex, sym.batchify(valid_tokens, 32)))
    print(f"held-out perplexity {history.last['valid_ppl']:.2f} after "
          f"{time.perf_counter() - t0:.0f} s\n\n3. Sampled text:\n")
    print(lm.sample(ex.arg_dict, vocab, prime="The ", length=args.sample_length,
                    seed=args.seed, backend=args.backend))
    return 0


# ---- export -------------------------------------------------------------------------------------
