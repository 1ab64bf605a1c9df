"""`--backend ray`: each replica's `ponder serve` runs under a Ray actor placed by a placement
group (one bundle per replica: its CPUs and GPUs), on whichever node of the cluster Ray picks.
The actor owns the server process: killing the actor kills the replica."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

from ponder.router.replicas import die_with_parent, free_port, serve_command


class ServeActor:
    """Lives in a Ray worker; Ray has already set CUDA_VISIBLE_DEVICES to this bundle's GPUs."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, argv: list[str]) -> str:
        import ray

        host = ray.util.get_node_ip_address()
        port = free_port("0.0.0.0")
        self.process = subprocess.Popen(serve_command(argv, "0.0.0.0", port), preexec_fn=die_with_parent)
        return f"http://{host}:{port}"

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, graceful: bool) -> None:
        if self.process is not None and self.process.poll() is None:
            (self.process.terminate if graceful else self.process.kill)()

    def join(self, timeout_s: float) -> int | None:
        if self.process is None:
            return None
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


class RayReplica:
    def __init__(self, name: str, argv: list[str], actor: Any, make_actor: Callable[[], Any] | None = None):
        self.name = name
        self.argv = argv
        self.actor = actor
        self._make_actor = make_actor  # a new actor in the same bundle, for restarts
        self._url = ""

    @property
    def url(self) -> str:
        return self._url

    def start(self) -> None:
        import ray

        self._url = ray.get(self.actor.start.remote(self.argv))

    def is_running(self) -> bool:
        import ray

        try:
            return bool(ray.get(self.actor.is_running.remote(), timeout=5))
        except Exception:  # the actor (or its node) is gone
            return False

    def stop(self, graceful: bool = True) -> None:
        try:
            self.actor.stop.remote(graceful)
        except Exception:
            pass

    def join(self, timeout_s: float) -> None:
        import ray

        try:
            ray.get(self.actor.join.remote(timeout_s), timeout=timeout_s + 10)
        except Exception:
            pass
        ray.kill(self.actor)

    def restart(self) -> None:
        """A new actor (and server process) in the same placement-group bundle; the old actor is
        killed with its process (a SIGSTOPped one too: SIGKILL ends it)."""
        import ray

        if self._make_actor is None:
            raise RuntimeError(f"replica {self.name} was made without an actor factory")
        try:
            ray.get(self.actor.stop.remote(False), timeout=10)
        except Exception:  # the actor is gone already
            pass
        ray.kill(self.actor)
        self.actor = self._make_actor()
        self._url = ""
        self.start()


class RayCluster:
    """Connects to (or starts) Ray and reserves one placement-group bundle per replica."""

    def __init__(self, address: str | None, num_replicas: int, cpus: float = 1.0, gpus: float = 0.0):
        import ray
        from ray.util.placement_group import placement_group

        if not ray.is_initialized():
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
        bundle: dict[str, float] = {"CPU": cpus}
        if gpus:
            bundle["GPU"] = gpus
        # SPREAD: replicas go to different nodes when there are several, else share one.
        self.group = placement_group([dict(bundle) for _ in range(num_replicas)], strategy="SPREAD")
        ray.get(self.group.ready(), timeout=120)
        self.cpus = cpus
        self.gpus = gpus
        self.extra_groups: list[Any] = []

    def replicas(self, argvs: list[list[str]]) -> list[RayReplica]:
        import ray
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        actor_class = ray.remote(ServeActor)
        handles = []
        for index, argv in enumerate(argvs):

            def make(index: int = index) -> Any:
                return actor_class.options(
                    num_cpus=self.cpus,
                    num_gpus=self.gpus,
                    scheduling_strategy=PlacementGroupSchedulingStrategy(self.group, index),
                ).remote()

            handles.append(RayReplica(f"replica-{index}", argv, make(), make))
        return handles

    def spawn(self, name: str, argv: list[str]) -> RayReplica:
        """One more replica (scale-up), in a placement group of its own (one bundle)."""
        import ray
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        bundle: dict[str, float] = {"CPU": self.cpus, **({"GPU": self.gpus} if self.gpus else {})}
        group = placement_group([bundle])
        ray.get(group.ready(), timeout=120)
        self.extra_groups.append(group)
        actor_class = ray.remote(ServeActor)

        def make() -> Any:
            return actor_class.options(
                num_cpus=self.cpus,
                num_gpus=self.gpus,
                scheduling_strategy=PlacementGroupSchedulingStrategy(group, 0),
            ).remote()

        return RayReplica(name, argv, make(), make)

    def close(self) -> None:
        import ray
        from ray.util.placement_group import remove_placement_group

        for group in [self.group, *self.extra_groups]:
            remove_placement_group(group)
        ray.shutdown()
