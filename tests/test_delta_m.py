from __future__ import annotations

import pytest

from mtlpareto.errors import ConfigError
from mtlpareto.metrics.delta_m import delta_m


def test_reproduces_the_published_hps_gain_on_nyuv2():
    # MPPS (seed 004) Tables 1-2, NYUv2: single task mIoU 0.3768, depth abs. error 0.5323,
    # mean angle 25.0227; hard parameter sharing 0.407 / 0.469 / 26.384, reported as +4.8 %.
    up = {("seg", "miou"): True, ("depth", "abs_err"): False, ("normal", "mean_angle"): False}
    single = {("seg", "miou"): 0.3768, ("depth", "abs_err"): 0.5323, ("normal", "mean_angle"): 25.0227}
    hps = {("seg", "miou"): 0.407, ("depth", "abs_err"): 0.469, ("normal", "mean_angle"): 26.384}
    assert delta_m(hps, single, up) == pytest.approx(4.8, abs=0.05)
    assert delta_m(single, single, up) == 0.0


def test_direction_flips_the_sign():
    assert delta_m({("a", "err"): 0.9}, {("a", "err"): 1.0}, {("a", "err"): False}) == pytest.approx(10.0)
    assert delta_m({("a", "acc"): 0.9}, {("a", "acc"): 1.0}, {("a", "acc"): True}) == pytest.approx(-10.0)


def test_missing_baseline_and_zero_baseline_are_named():
    with pytest.raises(ConfigError, match="a/acc"):
        delta_m({("a", "acc"): 1.0}, {}, {("a", "acc"): True})
    with pytest.raises(ConfigError, match="is 0"):
        delta_m({("a", "acc"): 1.0}, {("a", "acc"): 0.0}, {("a", "acc"): True})


# MPPS (seed 004) Table 1, NYUv2, one metric per task (its Eq. 5): mIoU, depth abs. error, mean angle.
MPPS_SINGLE = {"semantic": {"miou": 0.3768}, "depth": {"abs_err": 0.5323}, "normal": {"mean_angle": 25.0227}}
MPPS_TABLE_1 = {
    "Multi": ({"semantic": {"miou": 0.407}, "depth": {"abs_err": 0.469}, "normal": {"mean_angle": 26.384}}, 4.8),
    "MPPS +B": ({"semantic": {"miou": 0.405}, "depth": {"abs_err": 0.470}, "normal": {"mean_angle": 25.533}}, 5.7),
    "MPPS +G": ({"semantic": {"miou": 0.417}, "depth": {"abs_err": 0.466}, "normal": {"mean_angle": 25.965}}, 6.5),
}


def _nyuv2_tasks():
    from mtlpareto.tasks.depth import DepthTask
    from mtlpareto.tasks.normals import SurfaceNormalTask
    from mtlpareto.tasks.segmentation import SegmentationTask

    return [SegmentationTask("semantic", 13), DepthTask("depth"), SurfaceNormalTask("normal")]


@pytest.mark.parametrize("row", list(MPPS_TABLE_1))
def test_one_metric_per_task_reproduces_mpps_table_1(row):
    from mtlpareto.metrics.delta_m import delta_m_per_task

    scores, published = MPPS_TABLE_1[row]
    # The tasks' primary metrics and directions are exactly MPPS's choice: no metric named here.
    assert delta_m_per_task(scores, MPPS_SINGLE, _nyuv2_tasks()) == pytest.approx(published, abs=0.05)


def test_every_metric_convention_weighs_each_metric_and_skips_losses():
    from mtlpareto.metrics.delta_m import delta_m_every_metric, delta_m_per_task

    tasks = _nyuv2_tasks()
    names = {t.name: [m for m in t.metrics if m != "loss"] for t in tasks}
    base = {task: {m: 1.0 for m in metrics} for task, metrics in names.items()}
    base["depth"]["loss"] = 5.0  # a loss present in the records must not enter the average
    # Normals 10 % better on all 5 of its metrics, everything else equal.
    scores = {task: dict(values) for task, values in base.items()}
    for metric in names["normal"]:
        scores["normal"][metric] = 0.9 if not tasks[2].higher_is_better(metric) else 1.1
    scores["depth"]["loss"] = 50.0
    assert delta_m_every_metric(scores, base, tasks) == pytest.approx(100 * 5 * 0.1 / 9)
    assert delta_m_per_task(scores, base, tasks) == pytest.approx(100 * 0.1 / 3)
    # A named metric replaces the primary one; an unknown metric is named with the task's metrics.
    assert delta_m_per_task(scores, base, tasks, metrics={"semantic": "pixel_acc"}) == pytest.approx(100 * 0.1 / 3)
    with pytest.raises(ConfigError, match="has no metric 'iou'"):
        delta_m_per_task(scores, base, tasks, metrics={"semantic": "iou"})
    with pytest.raises(ConfigError, match="the baseline has no value for normal/median_angle"):
        delta_m_every_metric(scores, {**base, "normal": {"mean_angle": 1.0}}, tasks)
