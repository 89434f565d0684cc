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
