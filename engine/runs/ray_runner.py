"""The stages of ``engine.runs.batch`` on a Ray cluster (§3.2 at folder scale, Simonyan et al. 2013).

Ray core, not Ray Data: a photo's line needs its model stage and its cuts together, lines must
stream out as photos finish (for ``--resume``), and the cuts of one photo fan out from its model
stage; actors and tasks say this in a few lines (docs/scaling.md).

- Model actors load the network once each: one per GPU where the cluster has GPUs, else one per
  four CPUs of each node (at least one), holding no CPU reservation (``num_cpus=0``): on a CPU the
  model stage is about a quarter of a photo's work (130 of 520 ms at ``--top 5``), so a node's cores
  stay busy with cuts, and a reserved core would sit idle while the cuts queue. Actors restart and
  retry their calls when their process dies (``max_restarts``/``max_task_retries``).
- Cuts are CPU tasks (one core each), retried when their worker dies. They run wherever the
  scheduler puts them, on any node.
- The driver reads the photos (workers need no shared disk), keeps a bounded number in flight, and
  hands each finished line to ``on_line`` exactly once.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from engine.runs.batch import Line, Photo, propose_or_fail
from engine.runs.ray_cluster import join_error

RETRIES = 5  # a cut or model call is retried this often when its worker process dies
CPUS_PER_MODEL_ACTOR = 4  # CPU-only nodes: the model stage is about a quarter of a photo's work


def start(address: str | None):
    """Join the cluster at ``address`` ("auto", "HOST:PORT", "ray://..."), or start a local instance
    on this machine's cores when ``address`` is None. Returns whether we started it (and must stop it).
    ``ray_cluster.check_cluster(address)`` first says at once why joining would fail; here a failure
    after Ray's retries is one ValueError line too, a rejected token named as such."""
    import ray
    from ray.exceptions import AuthenticationError

    if ray.is_initialized():
        return False
    quiet = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if address is None:
        ray.init(num_cpus=os.cpu_count(), **quiet)
    else:
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, ValueError, RuntimeError, AuthenticationError) as exc:
            raise join_error(address, exc) from None
    return True


def run_ray(make_stages: Callable[..., object], photos: Iterable[Photo], *, on_line: Callable[[Line], None],
            on_nodes: Callable[[dict], None] | None = None, on_ready: Callable[[], None] | None = None) -> None:
    """Run every photo through the stages built by ``make_stages(with_model=...)`` (with the model in
    each model actor; without it here, for ``finish`` and ``assemble``); ``on_ready()`` is called once
    every model actor holds its model, ``on_nodes`` at the end with {node id: cuts run there}."""
    import ray

    stages = make_stages(with_model=False)
    actors = _model_actors(ray, make_stages)
    if not actors:
        raise ValueError("The Ray cluster has no CPU and no GPU to run the model on.")
    finish_ref = ray.put(stages.finish)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    # While the actors load their models (seconds, on one core each), the cut workers start and import
    # what cutting needs (the cut stage's modules): the first photos' cuts then start at once.
    warm = ray.remote(num_cpus=1)(_warm)
    for _ in range(cpus):
        warm.remote(finish_ref)  # not waited for
    # Nothing can be cut before the first model stage; a model that cannot load is the run's one error
    errors = sorted({error for error in ray.get([actor.ready.remote() for actor in actors]) if error})
    if errors:
        raise ValueError(f"The model could not be loaded on the Ray cluster: {'; '.join(errors)}")
    if on_ready is not None:
        on_ready()
    cut = ray.remote(num_cpus=1, max_retries=RETRIES)(_cut)
    waiting: dict = {}  # ObjectRef of a proposal without its arrays -> ObjectRef of (photo, payloads)
    cutting: dict = {}  # ObjectRef of a cut -> (photo name, index)
    jobs: dict = {}  # photo name -> [proposal, results, cuts left]
    nodes: dict = {}
    photo_iter = iter(photos)
    window = 4 * max(len(actors), cpus)
    next_actor = 0
    exhausted = False
    while True:
        while not exhausted and len(waiting) + len(jobs) < window:
            photo = next(photo_iter, None)
            if photo is None:
                exhausted = True
                break
            # Two objects back: the driver reads only the small one; the photo and its maps go from the
            # actor's object store straight to the cut tasks (zero-copy on the same node)
            light, arrays = actors[next_actor].propose.options(num_returns=2).remote(photo)
            waiting[light] = arrays
            next_actor = (next_actor + 1) % len(actors)
        if not waiting and not cutting:
            break
        ready, _ = ray.wait(list(waiting) + list(cutting), num_returns=1)
        ref = ready[0]
        if ref in waiting:
            arrays = waiting.pop(ref)
            proposal = ray.get(ref)
            if isinstance(proposal, dict):  # an error line
                on_line(proposal)
                continue
            jobs[proposal.image] = [proposal, [None] * len(proposal.payloads), len(proposal.payloads)]
            for index in range(len(proposal.payloads)):
                cutting[cut.remote(finish_ref, arrays, index)] = (proposal.image, index)
            if not proposal.payloads:
                on_line(stages.assemble(proposal, []))
                del jobs[proposal.image]
        else:
            name, index = cutting.pop(ref)
            result, node = ray.get(ref)
            nodes[node] = nodes.get(node, 0) + 1
            job = jobs[name]
            job[1][index] = result
            job[2] -= 1
            if job[2] == 0:
                del jobs[name]
                on_line(stages.assemble(job[0], job[1]))
    if on_nodes is not None:
        on_nodes(nodes)


def _warm(finish) -> None:
    """Nothing: receiving ``finish`` has imported what the cuts need."""


def _cut(finish, arrays, index: int):
    import ray

    image_hwc, payloads = arrays
    return finish(image_hwc, payloads[index]), ray.get_runtime_context().get_node_id()


class _ModelActor:
    """Holds one network; ``propose`` is the model stage of one photo."""

    def __init__(self, make_stages):
        from engine.runs.batch import one_thread

        self._threads = one_thread()
        self._threads.__enter__()  # for the actor's life: the model stage on one thread, as everywhere
        try:
            self.stages, self.error = make_stages(), None
        except (ValueError, OSError) as exc:  # ModelLoadError: said once by the driver, not as a crash
            self.stages, self.error = None, str(exc)

    def ready(self) -> str | None:
        """None when the model is loaded; else why it could not be."""
        return self.error

    def propose(self, photo: Photo):
        """(the proposal without its arrays, (photo, payloads)); (error line, None) for a bad photo."""
        proposal = propose_or_fail(self.stages, photo)
        if isinstance(proposal, dict):
            return proposal, None
        return proposal.without_arrays(), (proposal.image_hwc, proposal.payloads)


def _model_actors(ray, make_stages) -> list:
    gpus = int(ray.cluster_resources().get("GPU", 0))
    Actor = ray.remote(max_restarts=-1, max_task_retries=RETRIES)(_ModelActor)
    if gpus:
        return [Actor.options(num_gpus=1, num_cpus=1).remote(make_stages) for _ in range(gpus)]
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return [Actor.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=True)).remote(make_stages)
            for node, count in cpu_model_actors(ray.nodes()).items() for _ in range(count)]


def cpu_model_actors(nodes: list[dict]) -> dict[str, int]:
    """Model actors per alive node (``ray.nodes()``) of a cluster without GPUs: one per
    CPUS_PER_MODEL_ACTOR CPUs, at least one on a node with any; none on a node without CPUs."""
    counts = {}
    for node in nodes:
        cpus = int(node.get("Resources", {}).get("CPU", 0))
        if node.get("Alive") and cpus:
            counts[node["NodeID"]] = max(1, cpus // CPUS_PER_MODEL_ACTOR)
    return counts
