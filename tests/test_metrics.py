"""Live metrics reach the local node's Prometheus endpoint (Ray's metrics agent), read back over
HTTP from a real local Ray while a worker publishes them."""

import time
import urllib.request

import pytest

pytestmark = pytest.mark.slow


def test_gauge_reaches_the_node_metrics_endpoint(ray_local):
    ray = ray_local

    @ray.remote(num_cpus=0)
    class Publisher:
        def run(self, seconds: float) -> None:
            from ray_align.train.metrics import RunMetrics

            metrics, t0 = RunMetrics("probe-run", 1, None), time.time()
            while time.time() - t0 < seconds:
                metrics.publish(7, {"loss": 0.25, "orpo/loss/de": 0.5})
                time.sleep(0.5)

    publisher = Publisher.remote()
    publishing = publisher.run.remote(120)
    port = ray.nodes()[0]["MetricsExportPort"]
    t0, found = time.time(), []
    while time.time() - t0 < 120 and len(found) < 2:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
        found = [ln for ln in text.decode().splitlines()
                 if ln.startswith("ray_align_train{") and 'run="probe-run"' in ln]
        time.sleep(1)
    ray.kill(publisher)
    del publishing
    assert any('metric="loss"' in ln and 'rank="1"' in ln and ln.endswith(" 0.25")
               for ln in found), found
    assert any('metric="orpo/loss/de"' in ln and ln.endswith(" 0.5") for ln in found), found
