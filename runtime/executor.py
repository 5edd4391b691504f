"""`Executor`: the user's handle on a bound program, whatever engine runs it.

An engine computes; the executor owns the argument and gradient arrays, validates every
input before touching any state (a refused call leaves parameters and gradients as they
were), honours `grad_req` and draws a fresh seed for each training forward.

`arg_dict` and `grad_dict` are runtime.arg_views.ArgDict: assigning to them copies into the
executor's arrays or is refused; keys are never added or removed.

An engine provides `arg_specs` ({name: (shape, dtype)}), `out_specs` ([(name, shape, dtype)]),
`wrt` (arguments that get gradients), `forward(args, is_train, seed) -> [arrays]` and
`backward(head_grads) -> {name: array}` (after a forward).
"""
from __future__ import annotations

import numbers
import threading
from contextlib import contextmanager

import numpy as np

from runtime.arg_views import ArgDict, HeldArrays
from runtime.errors import BindError, BusyError, ShapeError, fmt_shape
from runtime.stream import StateCarrier

GRAD_REQS = ("write", "add", "null")
_GOLDEN = 0x9E3779B97F4A7C15
# Held while a backward writes its gradients into grad_dict. Executors made by reshape share
# their gradient arrays (as MXNet's), and so may two bound with the same args_grad: two such
# backwards in two threads would otherwise interleave their `+=` (numpy lets the GIL go) and
# lose updates, or leave a 'write' gradient half of one batch's and half of the other's.
_GRAD_WRITES = threading.Lock()


def normalize_grad_req(grad_req, names) -> dict:
    """'write' | 'add' | 'null' | {name: req} | [req per argument] -> {name: req}."""
    if isinstance(grad_req, str):
        reqs = {n: grad_req for n in names}
    elif isinstance(grad_req, dict):
        unknown = [k for k in grad_req if k not in names]
        if unknown:
            raise BindError(f"bind: grad_req names {unknown[0]!r}, which is not an argument; "
                            f"the arguments are {list(names)}")
        reqs = {n: grad_req.get(n, "null") for n in names}
    elif isinstance(grad_req, (list, tuple)) and len(grad_req) == len(names):
        reqs = dict(zip(names, grad_req))
    else:
        raise BindError(f"bind: 'grad_req' must be 'write', 'add', 'null', a dict or a list of "
                        f"{len(names)}, given {grad_req!r}")
    for n, r in reqs.items():
        if r not in GRAD_REQS:
            raise BindError(f"bind: grad_req for {n!r} must be one of {GRAD_REQS}, given {r!r}")
    return reqs


def check_array(where: str, name: str, value, shape, dtype) -> np.ndarray:
    """The array `value` for argument `name`, or a BindError/ShapeError saying what is wrong.
    Strided and transposed arrays are accepted: they are copied, never reinterpreted."""
    if not isinstance(value, np.ndarray):
        raise BindError(f"{where}: {name!r} must be a numpy array, given "
                        f"{type(value).__name__}")
    if value.shape != tuple(shape):
        raise ShapeError(f"{where}: {name!r} has shape {fmt_shape(value.shape)} but the "
                         f"executor was bound with {fmt_shape(shape)}")
    want = np.dtype(dtype)
    ok = value.dtype == want or (want.kind in "iu" and value.dtype.kind in "iu")
    if want.kind in "iu" and value.dtype.kind == "f":
        ok = bool(np.isfinite(value).all() and np.array_equal(value, np.round(value)))
    if not ok:
        raise BindError(f"{where}: {name!r} has dtype {value.dtype} but the executor was bound "
                        f"with {want}; convert it with .astype({str(want)!r})")
    if want.kind in "iu" and value.dtype != want and value.size:
        _check_fits(where, name, value, want)
    return value


def _check_fits(where: str, name: str, value: np.ndarray, want: np.dtype) -> None:
    """Integer (or whole float) values copied into an integer argument must fit its dtype:
    a wrapped index or length would be a silent wrong number."""
    info = np.iinfo(want)
    low, high = value.min(), value.max()
    if low < info.min or high > info.max:
        bad = low if low < info.min else high
        raise BindError(f"{where}: {name!r} holds {bad}, outside the range of its dtype {want} "
                        f"[{info.min}, {info.max}]")


def check_seed(where: str, seed) -> int:
    """`seed` (a Python or numpy integer, negative ones too) as an int in [0, 2**64)."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise BindError(f"{where}: 'seed' must be an int, given {type(seed).__name__} "
                        f"{seed!r}")
    return int(seed) % 2**64


def _busy(where: str) -> BusyError:
    return BusyError(f"{where}: this executor is running a call from another thread; use one "
                     f"executor per thread (ex.reshape() makes one that shares the parameters)")


class Executor:
    def __init__(self, engine, grad_req, seed: int = 0, args=None):
        self.engine = engine
        specs = engine.arg_specs
        self._reqs = normalize_grad_req(grad_req, list(specs))
        self.arg_dict = ArgDict("arg_dict", {n: np.zeros(s, d) for n, (s, d) in specs.items()})
        self.grad_dict = ArgDict("grad_dict", {n: np.zeros(s, d) for n, (s, d) in specs.items()
                                               if self._reqs[n] != "null"})
        self._held = HeldArrays(specs)
        self.aux_dict: dict = {}
        self.outputs: list[np.ndarray] = []
        self.seed = check_seed("bind", seed)
        self._train_calls = 0
        self._ran_forward = False
        self._lock = threading.Lock()
        self._carrier = StateCarrier()
        if args:
            self.copy_params_from(args)

    # ---- views --------------------------------------------------------------------------------
    @property
    def arg_arrays(self):
        return list(self.arg_dict.values())

    @property
    def grad_arrays(self):
        return [self.grad_dict.get(n) for n in self.arg_dict]

    @property
    def output_names(self):
        return [n for n, _, _ in self.engine.out_specs]

    @property
    def output_dict(self) -> dict:
        return dict(zip(self.output_names, self.outputs))

    @property
    def grad_req(self) -> dict:
        return dict(self._reqs)

    @property
    def program(self):
        return getattr(self.engine, "program", None)

    # ---- calls --------------------------------------------------------------------------------
    def copy_params_from(self, arg_params: dict, allow_extra_params: bool = False) -> None:
        checked = self._check_args("copy_params_from", arg_params, allow_extra_params)
        for n, v in checked.items():
            np.copyto(self.arg_dict[n], v, casting="unsafe")

    def forward(self, is_train: bool = False, seed: int | None = None,
                check_finite: bool = False, **inputs) -> list[np.ndarray]:
        """Runs the graph; keyword arrays replace arguments first. In training, masks are
        drawn from `seed`, or from a fresh seed derived from the executor's seed."""
        if not self._lock.acquire(blocking=False):  # _exclusive, inline: a call per chunk
            raise _busy("forward")
        try:
            return self._forward(bool(is_train), seed, check_finite, inputs)
        finally:
            self._lock.release()

    def _forward(self, is_train: bool, seed, check_finite: bool, inputs: dict) -> list:
        seed = None if seed is None else check_seed("forward", seed)
        checked = self._check_args("forward", inputs, False) if inputs else {}
        self._held.check("forward", self.arg_dict)
        if check_finite:
            self._check_finite(checked)
        saved = {n: self.arg_dict[n].copy() for n in checked}
        for n, v in checked.items():
            np.copyto(self.arg_dict[n], v, casting="unsafe")
        if is_train and seed is None:
            seed = (self.seed * _GOLDEN + self._train_calls) % 2**64
            self._train_calls += 1
        self.last_seed = 0 if seed is None else int(seed) % 2**64
        try:
            self.outputs = self.engine.forward(self.arg_dict, is_train, self.last_seed)
        except Exception:
            for n, v in saved.items():
                np.copyto(self.arg_dict[n], v)
            raise
        self._ran_forward, self._last_train, self._backward_ran = True, is_train, False
        return self.outputs

    def backward(self, out_grads=None) -> None:
        """Gradients of the heads given `out_grads` (ones for scalar heads when omitted).

        As in MXNet, backward may be called again without a new forward: 'write' gives the
        same gradients again, 'add' adds them once more. The backward pass reuses the
        storage of forward values it has read, so a repeated call first replays the last
        forward (same arguments, `is_train` and seed: the same masks); outputs are kept."""
        with self._exclusive("backward"):
            self._backward(out_grads)

    def _backward(self, out_grads) -> None:
        if not self._ran_forward:
            raise BindError("backward: call forward(is_train=True) first")
        head_grads = self._head_grads(out_grads)
        if not self.grad_dict:
            return
        self._held.check("backward", self.arg_dict, self.grad_dict)
        if self._backward_ran:
            self.engine.forward(self.arg_dict, self._last_train, self.last_seed)
        grads = self.engine.backward(head_grads)
        self._backward_ran = True
        with _GRAD_WRITES:  # gradient arrays may be shared (reshape, bind(args_grad=...))
            for n, g in grads.items():
                if self._reqs[n] == "add":
                    self.grad_dict[n] += g
                elif self._reqs[n] == "write":
                    np.copyto(self.grad_dict[n], g)

    def carry_states(self, pairs) -> None:
        """Streaming: writes each final-state output of the last forward into the
        initial-state argument it continues, in place (`pairs`: {argument: output});
        see runtime.stream."""
        if not self._lock.acquire(blocking=False):
            raise _busy("carry_states")
        try:
            self._carrier.carry(self, pairs)
        finally:
            self._lock.release()

    def reshape(self, **shapes) -> Executor:
        """A new executor for new input shapes that shares this one's parameter and gradient
        arrays (as MXNet's `Executor.reshape`); its program is compiled once per shape and
        cached. Needs an executor bound by `simple_bind`/`bind` (see symrnn.bind)."""
        reshaper = getattr(self, "reshaper", None)
        if reshaper is None:
            raise BindError("reshape: this executor was not bound from a symbol (a loaded "
                            "artifact runs only the shapes it was exported with)")
        with self._exclusive("reshape"):
            return reshaper(self, shapes)

    @contextmanager
    def _exclusive(self, where: str):
        """One call at a time: a call from a second thread while one runs is refused."""
        if not self._lock.acquire(blocking=False):
            raise _busy(where)
        try:
            yield
        finally:
            self._lock.release()

    def export(self, path, symbol_json: str | None = None, producer: str | None = None,
               key=None) -> dict:
        """Writes this executor's program(s), kernel IR, symbol and argument values to one
        zip that `runtime.load(path)` runs; returns the manifest (see runtime.artifact).
        `key` (bytes) signs it."""
        from runtime.artifact import export_executor

        return export_executor(self, path, symbol_json=symbol_json, producer=producer, key=key)

    # ---- validation -----------------------------------------------------------------------------
    def _check_args(self, where, values: dict, allow_extra: bool) -> dict:
        specs, checked = self.engine.arg_specs, {}
        if not isinstance(values, dict):
            raise BindError(f"{where}: expected a dict {{name: array}}, given "
                            f"{type(values).__name__}")
        for n, v in values.items():
            if n not in specs:
                if allow_extra:
                    continue
                raise BindError(f"{where}: {n!r} is not an argument; the arguments are "
                                f"{list(specs)}")
            checked[n] = check_array(where, n, v, *specs[n])
        return checked

    def _check_finite(self, inputs: dict) -> None:
        for n, v in {**self.arg_dict, **inputs}.items():
            if v.dtype.kind == "f" and not np.isfinite(v).all():
                raise BindError(f"forward: {n!r} holds NaN or Inf (check_finite=True)")

    def _head_grads(self, out_grads) -> list[np.ndarray]:
        specs = self.engine.out_specs
        if not isinstance(out_grads, (type(None), np.ndarray, list, tuple, dict)):
            raise BindError(f"backward: 'out_grads' must be an array, a list of arrays (one "
                            f"per head) or a dict {{head: array}}, given "
                            f"{type(out_grads).__name__} {out_grads!r}"[:200])
        if out_grads is None:
            for name, shape, _ in specs:
                if int(np.prod(shape)) != 1:
                    raise BindError(f"backward: out_grads is required because head {name!r} "
                                    f"has shape {fmt_shape(shape)} (not a scalar)")
            return [np.ones(s, d) for _, s, d in specs]
        if isinstance(out_grads, np.ndarray):
            out_grads = [out_grads]
        if isinstance(out_grads, dict):
            missing = [n for n, _, _ in specs if n not in out_grads]
            if missing:
                raise BindError(f"backward: out_grads has no entry for head {missing[0]!r}")
            out_grads = [out_grads[n] for n, _, _ in specs]
        if len(out_grads) != len(specs):
            raise BindError(f"backward: out_grads has {len(out_grads)} arrays but the symbol "
                            f"has {len(specs)} heads {[n for n, _, _ in specs]}")
        return [np.ascontiguousarray(check_array("backward", f"out_grads[{n}]", g, s, d))
                for g, (n, s, d) in zip(out_grads, specs)]
