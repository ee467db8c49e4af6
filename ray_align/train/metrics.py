"""What a run publishes at each log step, for the people watching it.

- Ray metrics (`ray.util.metrics`): one gauge, `align_train` (Ray exports it as
  `ray_align_train`), tagged with the run, the rank and the metric (`loss`, `orpo/loss`,
  `sft/loss/de`, `tokens_per_s`, `step`, ...). Every node's Prometheus endpoint serves it
  (after Ray's next export, ~10 s), and with it the dashboard's Metrics view.
- TensorBoard event files from rank 0 under `<run folder>/tensorboard/`:
  `tensorboard --logdir <workdir>/align` shows every run.
"""

from __future__ import annotations

from pathlib import Path


class RunMetrics:
    def __init__(self, run: str, rank: int, tensorboard: Path | None) -> None:
        from ray.util.metrics import Gauge

        self.tags = {"run": run, "rank": str(rank)}
        self.gauge = Gauge("align_train", "ray-align training metrics, per run/rank/metric",
                           tag_keys=("run", "rank", "metric"))
        self.writer = None
        if tensorboard is not None and rank == 0:
            from tensorboardX import SummaryWriter

            self.writer = SummaryWriter(str(tensorboard))

    def publish(self, step: int, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            self.gauge.set(float(value), tags=self.tags | {"metric": name})
            if self.writer is not None:
                self.writer.add_scalar(name, float(value), step)
        if self.writer is not None:
            self.writer.flush()  # what tensorboardX's writer thread has taken from its queue

    def close(self) -> None:
        """Write every queued event (a flush alone can miss the newest)."""
        if self.writer is not None:
            self.writer.close()
