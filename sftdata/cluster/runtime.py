"""Attach to a Ray cluster: ``local`` (start one in this process), ``auto`` (the one ``ray start``
runs on this node) or an address (``ray://head:10001`` or ``head:6379``)."""

from __future__ import annotations

from typing import Any

from ..core.errors import ConfigError, EnvironmentProblem


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:  # the extra is not installed
        raise EnvironmentProblem("--ray needs Ray: pip install 'sftdata[ray]'") from exc
    return ray


def connect(address: str) -> Any:
    """Initialise Ray once per process (reused when a caller, e.g. a test, already did). Returns ray."""
    ray = import_ray()
    if not address or not address.strip():
        raise ConfigError("give an address, 'auto' or 'local'", "--ray")
    if ray.is_initialized():
        return ray
    kwargs: dict[str, Any] = {"log_to_driver": False, "include_dashboard": False}
    if address == "local":
        ray.init(**kwargs)
    else:
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise EnvironmentProblem(f"--ray {address}: cannot reach the Ray cluster ({exc})") from exc
    return ray


def cluster_cpus(ray: Any) -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))
