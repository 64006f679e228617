"""Joining a Ray cluster (or starting a local one) and reading what it offers.

A local cluster is what a laptop or CI gets: Ray processes on this machine, no dashboard. A real cluster
is named by address (``auto`` inside one, ``ray://head:10001`` from outside) and must have scimatch and
its model package installed on every node (a ``runtime_env`` or the same image): workers import it.
"""

from __future__ import annotations

import logging
import os

from scimatch.settings import Settings


def connect(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join ``address``, or start a local cluster with ``num_cpus`` (default: this machine's CPUs)."""
    import ray

    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus or len(os.sched_getaffinity(0)), include_dashboard=False,
                 logging_level=logging.WARNING, log_to_driver=False)


def cluster_gpus() -> float:
    import ray

    return float(ray.cluster_resources().get("GPU", 0.0))


def gpus_per_worker(settings: Settings) -> float:
    """What each embedding actor asks for: the setting, else one GPU where the cluster has any."""
    if settings.ray_gpus_per_worker is not None:
        return settings.ray_gpus_per_worker
    return 1.0 if cluster_gpus() >= 1 else 0.0
