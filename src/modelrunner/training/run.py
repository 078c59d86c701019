"""One training run (``train_once``) and the ``--watch`` loop.

A run: the triggers are checked (none fires: nothing to do, said why) -> the model's lock is taken (one run
per model; a second is refused) -> the trainer gets the data and the serving model -> the result is saved
and pushed with lineage -> it is judged on held-out recent labelled rows (``--require`` + saved gates) -> it
passes: an online experiment starts (``--rollout``), whose decider promotes or drops it. A failure at any
step ends the run ``failed`` (audited) with production untouched; a candidate failing its gates ends it
``refused`` and never reaches traffic.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelrunner.errors import FailedPrecondition, ModelrunnerError
from modelrunner.evaluation import metrics as m
from modelrunner.experiments.rules import parse_rules
from modelrunner.training import data as tdata
from modelrunner.training import release
from modelrunner.training.loader import Loaded, load_callable
from modelrunner.training.triggers import Trigger, due, parse_trigger

log = logging.getLogger(__name__)

EXIT = {"nothing": 0, "started": 0, "pushed": 0, "failed": 1, "locked": 2, "refused": 3}


@dataclass
class TrainOptions:
    model: str
    trainer: str
    endpoint: str | None = None
    data: str | None = None
    triggers: list[str] = field(default_factory=list)
    requirements: list[str] = field(default_factory=list)
    rollout: str | None = None
    decide: list[str] = field(default_factory=list)
    min_labels: int = 50
    window_s: float | None = None
    holdout: float = 0.2
    min_holdout: int = 30
    balance: bool = False
    lease_s: float = 300.0
    actor: str | None = None


@dataclass
class Prepared:
    """Options checked once, before any run: bad ones fail at start with one line."""

    opts: TrainOptions
    endpoint: str
    trainer: Loaded
    triggers: list[Trigger]
    rollout: release.Rollout


@dataclass
class Outcome:
    status: str  # nothing | locked | failed | refused | pushed | started
    message: str
    run_id: str | None = None
    version: int | None = None
    experiment: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return EXIT[self.status]


def prepare(opts: TrainOptions) -> Prepared:
    triggers = [parse_trigger(t) for t in opts.triggers]
    rollout = release.parse_rollout(opts.rollout)
    release.check_requirements(list(opts.requirements))
    parse_rules(opts.decide)
    return Prepared(opts, opts.endpoint or opts.model, load_callable(opts.trainer), triggers, rollout)


def _parent(registry: Any, model: str, endpoint: str) -> Any:
    """The version serving now: the endpoint's target, else ``model@production``."""
    try:
        mv = registry.check_target(registry.endpoint(endpoint).target)
        if mv.name == model:
            return mv
    except ModelrunnerError:
        pass
    return registry.resolve(f"{model}@production")


@contextmanager
def _lease(registry: Any, run_id: str, lease_s: float) -> Iterator[None]:
    """Renew the run's lease every third of it while the run works."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(lease_s / 3):
            try:
                registry.renew_training(run_id, lease_s)
            except Exception as exc:  # noqa: BLE001 - a missed renewal is retried; the lease has slack
                log.warning("renewing the lease of %s failed: %s", run_id, exc)

    thread = threading.Thread(target=renew, name=f"lease-{run_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def base_model(parent_dir: Path) -> tuple[Any, Callable[[], None]]:
    """The serving model for the trainer: the original object when the flavor keeps one we can read back
    (scikit-learn's joblib file), else the loaded Predictor; and how to release it."""
    from modelrunner.bundle import open_bundle

    bundle = open_bundle(parent_dir)
    if bundle.manifest.flavor == "sklearn" and (parent_dir / "model.joblib").is_file():
        import joblib

        return joblib.load(parent_dir / "model.joblib"), lambda: None
    predictor = bundle.load()
    return predictor, predictor.close


def train_once(registry: Any, prep: Prepared) -> Outcome:
    """Check the triggers and, when one fires, run the whole release path once."""
    opts = prep.opts
    reason, reasons = due(prep.triggers, registry, opts.model, prep.endpoint)
    if reason is None:
        return Outcome("nothing", "nothing to do: " + "; ".join(reasons))
    exp = _running_experiment(registry, prep.endpoint)
    if exp is not None and prep.rollout.mode != "none":
        return Outcome(
            "nothing",
            f"nothing to do: experiment {exp.id} ({exp.candidate}) runs on endpoint "
            f"{prep.endpoint!r}; training waits until it ends",
        )
    parent = _parent(registry, opts.model, prep.endpoint)
    try:
        run = registry.start_training(
            opts.model, trigger=reason, lease_s=opts.lease_s, parent_version=parent.version, actor=opts.actor
        )
    except FailedPrecondition as exc:
        return Outcome("locked", str(exc))
    with _lease(registry, run.id, opts.lease_s):
        try:
            return _release(registry, prep, run.id, reason, parent)
        except Exception as exc:  # noqa: BLE001 - any failure ends the run failed; production untouched
            message = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ModelrunnerError) else str(exc)
            _finish(
                registry,
                run.id,
                "failed",
                error=message.splitlines()[0] if message else "failed",
                actor=opts.actor,
            )
            first = message.splitlines()[0] if message else ""
            return Outcome(
                "failed",
                f"training failed ({reason}): {first}; production still serves {parent.ref}",
                run_id=run.id,
            )


def _running_experiment(registry: Any, endpoint: str) -> Any:
    try:
        return registry.experiment(endpoint)
    except ModelrunnerError:
        return None


def _finish(registry: Any, run_id: str, state: str, **kw: Any) -> None:
    try:
        registry.finish_training(run_id, state, **kw)
    except FailedPrecondition as exc:  # the lease expired and another run took over
        log.warning("%s", exc)


def _release(registry: Any, prep: Prepared, run_id: str, reason: str, parent: Any) -> Outcome:
    opts = prep.opts
    parent_dir = registry.fetch(parent)
    base_ds = tdata.load_base(opts.data, parent.contract)
    data, held = tdata.build(
        registry,
        prep.endpoint,
        parent.contract,
        base=base_ds,
        parent_sha256=parent.lineage.get("training_data_sha256"),
        window_s=opts.window_s,
        holdout=opts.holdout,
        balanced=opts.balance,
    )
    if data.rows == 0:
        raise FailedPrecondition("no training rows: give --data or log inputs and feedback on the endpoint")
    base, release_base = base_model(parent_dir)
    try:
        model = prep.trainer.fn(data, base)
    finally:
        release_base()
    if model is None:
        raise FailedPrecondition(f"the trainer {prep.trainer.spec} returned None (expected a model)")
    lineage = {
        "training_run": run_id,
        "trigger": reason,
        "parent_version": parent.version,
        "data": data.summary(),
        "trainer": prep.trainer.code,
    }
    with release.workdir() as tmp:
        path = release.save_candidate(
            model,
            parent_dir,
            parent,
            Path(tmp) / "candidate",
            training_data={**data.columns, "target": data.y},
            lineage=lineage,
            description=f"retrained from {parent.ref} ({reason})",
        )
        mv = release.push_candidate(registry, path, opts.model, run_id=run_id, actor=opts.actor)
    return _judge_and_roll_out(registry, prep, run_id, reason, parent, mv, held)


def _judge_and_roll_out(
    registry: Any, prep: Prepared, run_id: str, reason: str, parent: Any, mv: Any, held: Any
) -> Outcome:
    opts = prep.opts
    if held.rows < opts.min_holdout:
        why = (
            f"the held-out slice of recent labelled rows has {held.rows} rows (< {opts.min_holdout}); "
            "the candidate cannot be judged"
        )
        registry.finish_training(run_id, "refused", new_version=mv.version, error=why, actor=opts.actor)
        return Outcome("refused", f"{mv.ref} refused: {why}", run_id, mv.version)
    result = release.judge(registry, mv.ref, held, list(opts.requirements), actor=opts.actor)
    metrics = {k: v for k, v in result.metrics.items() if v is not None}
    if not result.passed:
        return _refused_by_gates(registry, prep, run_id, parent, mv, held, result, metrics)
    if prep.rollout.mode == "none":
        registry.finish_training(
            run_id, "succeeded", new_version=mv.version, detail={"rollout": "none"}, actor=opts.actor
        )
        return Outcome(
            "pushed",
            f"{mv.ref} passed its gates ({_fmt(metrics)}); pushed, no rollout",
            run_id,
            mv.version,
            metrics=metrics,
        )
    return _start_rollout(registry, prep, run_id, mv, held, metrics)


def _refused_by_gates(
    registry: Any,
    prep: Prepared,
    run_id: str,
    parent: Any,
    mv: Any,
    held: Any,
    result: Any,
    metrics: dict[str, float],
) -> Outcome:
    """The run ends refused: the candidate failed a gate on the held-out rows; production is unchanged."""
    failed = "; ".join(
        f"{g.requirement}: {g.reason}" if getattr(g, "reason", "") else g.requirement
        for g in result.gates
        if not g.passed
    )
    registry.finish_training(
        run_id,
        "refused",
        new_version=mv.version,
        error=f"gates failed: {failed}",
        detail={"gates": [g.to_dict() for g in result.gates]},
        actor=prep.opts.actor,
    )
    return Outcome(
        "refused",
        f"{mv.ref} refused by its gates on {held.rows} held-out rows: {failed}; "
        f"production still serves {parent.ref}",
        run_id,
        mv.version,
        metrics=metrics,
    )


def _start_rollout(
    registry: Any, prep: Prepared, run_id: str, mv: Any, held: Any, metrics: dict[str, float]
) -> Outcome:
    """The run ends succeeded: the candidate passed its gates and goes out as the rollout's experiment."""
    opts = prep.opts
    rules = [str(r) for r in parse_rules(opts.decide or release.default_rules(m.infer_task(mv.contract)))]
    exp = release.start_rollout(
        registry, prep.endpoint, mv.ref, prep.rollout, rules, min_labels=opts.min_labels, actor=opts.actor
    )
    registry.finish_training(
        run_id,
        "succeeded",
        new_version=mv.version,
        detail={"experiment": exp.id, "rollout": str(prep.rollout)},
        actor=opts.actor,
    )
    return Outcome(
        "started",
        f"{mv.ref} passed its gates ({_fmt(metrics)}) on {held.rows} held-out rows; "
        f"experiment {exp.id}: {prep.rollout} (decide: {'; '.join(rules)})",
        run_id,
        mv.version,
        exp.id,
        metrics,
    )


def _fmt(metrics: dict[str, float]) -> str:
    keys = [k for k in ("accuracy", "macro_f1", "rmse", "cer") if k in metrics] or list(metrics)[:2]
    return ", ".join(f"{k} {metrics[k]:.4f}" for k in keys)


def watch(
    registry: Any,
    prep: Prepared,
    *,
    interval_s: float,
    stop: threading.Event,
    report: Callable[[Outcome], None],
) -> None:
    """Check the triggers every ``interval_s`` until ``stop`` is set; report every outcome that changed."""
    last = None
    while not stop.is_set():
        started = time.monotonic()
        try:
            outcome = train_once(registry, prep)
        except ModelrunnerError as exc:  # the registry unreachable for a moment: said, retried
            outcome = Outcome("failed", str(exc))
        if outcome.message != last:
            report(outcome)
            last = outcome.message
        stop.wait(max(0.0, interval_s - (time.monotonic() - started)))
