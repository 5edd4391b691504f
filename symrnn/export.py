"""`symrnn.export`: a symbol (or a bound executor) to one artifact zip that `runtime` runs alone.

    >>> import symrnn as sym, runtime
    >>> rnn = sym.RNNFactory(num_hidden=[8], data_dim=5, name="lstm")      # doctest: +SKIP
    >>> out = rnn.step(sym.Variable("data"), seq_len=4, ret_typ="out")[-1]  # doctest: +SKIP
    >>> sym.export(out, "lstm.zip", params=weights, data=(4, 3, 5))          # doctest: +SKIP
    >>> ex = runtime.load("lstm.zip")                                        # doctest: +SKIP

The format (members, manifest, checksums, what the loader refuses) is runtime.artifact's. The
program exported is the CPU compilation of the symbol; the same program runs on the CUDA
engine (`runtime.load(path, backend="cuda")`), since programs are target-independent and the
artifact carries every kernel's C and CUDA source.
"""
from __future__ import annotations

import numpy as np

from runtime.artifact import export_executor
from runtime.errors import ArtifactError
from runtime.executor import Executor


def export(symbol, path, params: dict | None = None, grad_req="write", fuse: bool = True,
           dtype: str | None = None, seed: int = 0, verify: bool = False, **shapes) -> dict:
    """Compiles `symbol` for the input `shapes` (as `simple_bind` does), sets the argument
    values in `params` ({name: array}; others stay zero) and writes the artifact to `path`.
    Returns the manifest. `grad_req` other than 'null' also exports the training program.

    An `Executor` may be given in place of the symbol: it is written as it stands (its
    program(s) and current argument values); `params` then overrides argument values first.

    `verify=True` loads the written file back with `runtime.load` and checks that an inference
    forward on the current arguments gives bit-identical outputs (ArtifactError otherwise).
    """
    from symrnn import __version__

    if isinstance(symbol, Executor):
        if shapes:
            raise TypeError(f"export: an executor is already bound; shapes "
                            f"{sorted(shapes)} cannot be given with it")
        ex = symbol
    else:
        from symrnn.executor import simple_bind

        ex = simple_bind(symbol, "cpu", grad_req, fuse, dtype, seed, shapes, where="export")
        ex.input_names = list(shapes)
    if params:
        ex.copy_params_from(params)
    manifest = export_executor(ex, path, producer=__version__)
    if verify:
        _verify(ex, path)
    return manifest


def _verify(ex: Executor, path) -> None:
    from runtime.artifact import load

    loaded = load(path)
    want = ex.forward(is_train=False)
    got = loaded.forward(is_train=False)
    for name, a, b in zip(ex.output_names, want, got):
        if not np.array_equal(a, b, equal_nan=True):
            raise ArtifactError(f"export: {str(path)!r} was written, but output {name!r} of "
                                f"the loaded program differs from the executor's (largest "
                                f"difference {float(np.nanmax(np.abs(a - b)))})")
