"""Recurrent layers: the cells (MXNet's cell protocol) and `RNNFactory`, built from them.

    >>> import symrnn as sym
    >>> rnn = sym.RNNFactory(num_hidden=[8, 8], data_dim=4, typ="gru", name="enc")
    >>> out = rnn.step(sym.Variable("data"), seq_len=5, ret_typ="out")[-1]
"""
from symrnn.rnn.cells import BaseRNNCell, GRUCell, LSTMCell, RNNCell
from symrnn.rnn.factory import RNNFactory
from symrnn.rnn.modifiers import BidirectionalCell, DropoutCell, SequentialRNNCell, ZoneoutCell

__all__ = [
    "BaseRNNCell", "BidirectionalCell", "DropoutCell", "GRUCell", "LSTMCell", "RNNCell",
    "RNNFactory", "SequentialRNNCell", "ZoneoutCell",
]
