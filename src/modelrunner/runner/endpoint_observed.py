"""The experiment and prediction-log side of an :class:`~modelrunner.runner.endpoint.Endpoint`: the running
experiment (started, replaced, ended), whether answers are logged, and what the admin API shows of it. While
either is on, the endpoint's requests go through :func:`modelrunner.runner.experiment.serve`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelrunner.runner.deployment import Deployment
    from modelrunner.runner.experiment import LiveExperiment
    from modelrunner.runner.predlog import LogConfig, PredictionLog


class ObservedMixin:
    """Experiments and the prediction log, mixed into ``Endpoint`` (which sets these attributes)."""

    name: str
    experiment: LiveExperiment | None
    experiment_error: str | None
    recorder: PredictionLog | None
    log_config: LogConfig
    _observed: bool

    if TYPE_CHECKING:

        def retire(self, dep: Deployment) -> None: ...

    def _update_observed(self) -> None:
        self._observed = self.experiment is not None or (
            self.recorder is not None and self.log_config.active(False)
        )

    @property
    def logging(self) -> bool:
        """Whether answers are logged now (the config's log_predictions, else: while an experiment runs)."""
        return self.recorder is not None and self.log_config.active(self.experiment is not None)

    def log_answer(
        self,
        request_id: str,
        variant: str,
        dep: Deployment,
        seconds: float,
        outputs: Any,
        error: str | None,
        inputs: Any,
    ) -> None:
        recorder = self.recorder
        if recorder is None or not self.log_config.active(self.experiment is not None):
            return
        live = self.experiment
        recorder.add(
            self.name,
            request_id,
            variant,
            dep.model,
            dep.version,
            seconds * 1000.0,
            outputs,
            experiment_id=live.id if live is not None else None,
            error=error,
            inputs=inputs,
            bytes_inputs=self.log_config.bytes_inputs,
        )

    def set_experiment(self, live: LiveExperiment | None) -> LiveExperiment | None:
        """Run ``live`` from now on (None: stop); returns the one it replaces (the caller stops it and
        retires its candidate)."""
        old, self.experiment = self.experiment, live
        if live is not None:
            live.start(self)  # type: ignore[arg-type]  # self is the Endpoint
        self._update_observed()
        return old

    async def end_experiment(self, *, keep_candidate: bool = False) -> Deployment | None:
        """Stop the running experiment; its candidate is drained and unloaded, or returned with
        ``keep_candidate`` (it becomes production: a promotion without a second load)."""
        old = self.set_experiment(None)
        if old is None:
            return None
        await old.stop()
        if keep_candidate:
            return old.candidate
        self.retire(old.candidate)
        return None

    def _describe_experiment(self) -> dict[str, Any] | None:
        live = self.experiment
        if live is None:
            return {"error": self.experiment_error} if self.experiment_error else None
        return {
            "id": live.id,
            "mode": live.mode,
            "percent": live.experiment.percent,
            "sticky_key": live.experiment.sticky_key,
            "candidate": live.candidate.describe(),
            "mirrored": live.mirrored,
            "dropped": live.dropped,
            "logging": self.logging,
        }
