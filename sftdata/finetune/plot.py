"""The loss plot: train loss per step (raw and smoothed) and eval loss, as a PNG (matplotlib Agg)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _smooth(values: list[float], weight: float = 0.8) -> list[float]:
    """Exponential moving average with bias correction, as TensorBoard smooths."""
    out, avg = [], 0.0
    for i, value in enumerate(values, start=1):
        avg = weight * avg + (1 - weight) * value
        out.append(avg / (1 - weight ** i))
    return out


def plot_curves(train: list[dict[str, Any]], evals: list[dict[str, Any]], path: str | Path,
                title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")  # no display needed; must precede pyplot
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if train:
        steps = [t["step"] for t in train]
        losses = [t["loss"] for t in train]
        ax.plot(steps, losses, color="tab:blue", alpha=0.3, linewidth=1, label="train (per step)")
        ax.plot(steps, _smooth(losses), color="tab:blue", linewidth=2, label="train (smoothed)")
    if evals:
        ax.plot([e["step"] for e in evals], [e["loss"] for e in evals], color="tab:orange",
                marker="o", linewidth=2, label="eval")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (mean over trained tokens)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
