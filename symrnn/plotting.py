"""Loss curves to an image: the one plotting helper of `symrnn.train` and `symrnn train`."""
from __future__ import annotations

from runtime.errors import ConfigError


def plot_loss_curve(path: str, train: tuple, valid: list, xlabel: str, who: str,
                    labels: tuple = ("train", "valid")) -> None:
    """Writes `train` (xs, ys) as a line and `valid` [(x, y)] as points to `path`; `who`
    names the caller in the error when matplotlib is missing."""
    plt = pyplot(who)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(*train, lw=0.8, label=labels[0])
    if valid:
        ax.plot(*zip(*valid), "o-", label=labels[1])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("loss per token")
    ax.legend()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def pyplot(who: str):
    """matplotlib's pyplot on the Agg backend, or a ConfigError naming `who`."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError(f"{who} needs matplotlib (pip install matplotlib)") from None
    return plt
