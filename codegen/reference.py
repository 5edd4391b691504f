"""The reference engine: runs a differentiated graph with the numpy interpreter.

Forward keeps exactly the forward values that the gradient nodes read, so backward does
not recompute the forward pass.
"""
from __future__ import annotations

from codegen.graph import Graph, node, upstream
from codegen.interpreter import EvalContext, evaluate


class ReferenceEngine:
    def __init__(self, graph: Graph, output_names: list[str]):
        self.graph = graph
        self.heads = list(graph.graph["outputs"])
        self.arg_specs = {nid: (n.shape, n.dtype) for nid, n in _vars(graph)
                          if n.attr("kind") != "head_grad"}
        self.out_specs = [(name, node(graph, h).shape, node(graph, h).dtype)
                          for name, h in zip(output_names, self.heads)]
        self.grads = dict(graph.graph.get("grads", {}))
        self.wrt = list(self.grads)
        self.head_grads = graph.graph.get("head_grads", {})
        self._saved = self._forward_values_read_by_backward()
        self._env: dict = {}
        self._ctx = EvalContext()

    def forward(self, args: dict, is_train: bool, seed: int):
        self._ctx = EvalContext(seed=seed, is_train=is_train)
        feeds = {n: args[n] for n in self.arg_specs}
        env = evaluate(self.graph, feeds, self.heads, self._ctx, keep=self._saved)
        self._env = {**feeds, **env}
        return [env[h].copy() for h in self.heads]

    def backward(self, head_grads: list) -> dict:
        feeds = dict(self._env)
        for h, g in zip(self.heads, head_grads):
            feeds[self.head_grads[h]] = g
        env = evaluate(self.graph, feeds, list(self.grads.values()), self._ctx)
        return {a: env[gid] for a, gid in self.grads.items()}

    def _forward_values_read_by_backward(self) -> set:
        forward = upstream(self.graph, self.heads)
        back = set(self.graph) - forward
        return {src for nid in back for src in node(self.graph, nid).inputs if src in forward}


def _vars(g):
    return [(nid, node(g, nid)) for nid in g if node(g, nid).op == "var"]
