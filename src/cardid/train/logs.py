"""``train_log.jsonl`` (one JSON object per line, truncated on resume) and ``curves.png``."""

from __future__ import annotations

import json
from pathlib import Path

from cardid.io import write_bytes_atomic


class TrainLog:
    def __init__(self, path: str | Path, enabled: bool = True):
        self.path, self.enabled = Path(path), enabled

    def truncate_after(self, step: int) -> None:
        """Drop records after ``step`` (written by a run that died after its last checkpoint)."""
        if not self.enabled or not self.path.exists():
            return
        keep = [
            ln for ln in self.path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= step
        ]
        write_bytes_atomic(self.path, ("\n".join(keep) + "\n" if keep else "").encode())

    def write(self, record: dict) -> None:
        if self.enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")


def open_run(out: Path, cfg, start: int, main: bool) -> TrainLog:
    """Prepare a run directory: the resolved config beside the outputs and a log without the records
    of steps after the checkpoint being resumed from."""
    from cardid.config import save_config

    tlog = TrainLog(out / "train_log.jsonl", enabled=main)
    tlog.truncate_after(start)
    if main:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.yaml")
    return tlog


def read_log(path: str | Path) -> list[dict]:
    p = Path(path)
    return [json.loads(ln) for ln in p.read_text().splitlines() if ln.strip()] if p.exists() else []


def plot_curves(log_path: str | Path, out_png: str | Path) -> None:
    """Loss, a training signal (ArcFace accuracy or cosine to the teacher) and validation Recall@1
    (every model the log has: ``val/recall@1`` or ``val/<model>/recall@1``) against optimizer steps."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = read_log(log_path)
    train = [r for r in recs if "loss" in r]
    val = [r for r in recs if any(k.startswith("val/") for k in r)]
    train_keys = sorted({k for r in train for k in r if k == "acc" or k.endswith("cos_to_teacher")})
    val_keys = sorted({k for r in val for k in r if k.endswith("recall@1") and "cross/" not in k})
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot([r["step"] for r in train], [r["loss"] for r in train])
    for k in train_keys:
        pts = [(r["step"], r[k]) for r in train if k in r]
        axes[1].plot(*zip(*pts, strict=True), label=k)
    for k in val_keys:
        pts = [(r["step"], r[k]) for r in val if k in r]
        axes[2].plot(*zip(*pts, strict=True), marker="o", label=k.removeprefix("val/"))
    titles = ("loss", "training signal", "val Recall@1 (photo → gallery)")
    for ax, title in zip(axes, titles, strict=True):
        ax.set_title(title)
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
    p1 = [r["step"] for r in recs if r.get("phase") == 1]
    if p1 and any(r.get("phase") == 2 for r in train):  # mark where the backbone starts training
        for ax in axes:
            ax.axvline(max(p1), color="grey", ls="--", lw=1)
        axes[0].text(max(p1), axes[0].get_ylim()[1], " phase 2", va="top", fontsize=8, color="grey")
    axes[2].set_ylim(0, 1)
    for ax in axes[1:]:
        if ax.lines:
            ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    write_bytes_atomic(out_png, buf.getvalue())
