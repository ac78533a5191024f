"""Run footprints: measured CPU time and memory, the TDP estimate, and the model card."""

from __future__ import annotations

import datetime

import pytest

from freshlm.footprint import CPU_WATTS_PER_CORE, Meter, card_lines, device_tdp_w, energy_kwh
from freshlm.registry import Lineage, render_model_card


def test_a_cpu_run_records_cpu_hours_memory_and_an_estimated_energy():
    meter = Meter()
    sum(i * i for i in range(300_000))  # some CPU work
    footprint = meter.finish(ranks=2, grid_intensity_g_per_kwh=500.0)
    assert footprint["device_kind"] == "cpu" and footprint["devices"] == 2
    assert footprint["cpu_hours"] > 0 and footprint["device_hours"] > 0
    assert footprint["peak_memory_mb"] > 10
    assert footprint["energy_source"] == "tdp-estimate"
    expected_kwh = footprint["cpu_hours"] * CPU_WATTS_PER_CORE / 1000
    assert footprint["energy_kwh"] == pytest.approx(expected_kwh, rel=1e-3)
    assert footprint["kg_co2e"] == pytest.approx(expected_kwh * 0.5, rel=1e-3)


def test_gpu_energy_comes_from_nvml_where_present_else_from_the_device_kinds_tdp():
    assert device_tdp_w("NVIDIA H100 80GB HBM3") == 700.0
    assert device_tdp_w("NVIDIA L40S") == 350.0 and device_tdp_w("NVIDIA L4") == 72.0
    assert device_tdp_w("Some Future GPU") == 300.0
    # 2 A100-hours at 400 W plus 4 CPU-hours at 10 W: 0.84 kWh.
    assert energy_kwh(
        cpu_hours=4, device_hours=2, device_name="NVIDIA A100-SXM4-40GB", device_joules=None
    ) == (pytest.approx(0.84), "tdp-estimate")
    # NVML measured 1.8 MJ (0.5 kWh) on the boards.
    assert energy_kwh(
        cpu_hours=4, device_hours=2, device_name="NVIDIA A100", device_joules=1.8e6
    ) == (pytest.approx(0.54), "nvml")


def test_the_model_card_shows_device_hours_and_kwh():
    footprint = Meter().finish(ranks=2, grid_intensity_g_per_kwh=475.0)
    card = render_model_card(
        version_id="0" * 32, lineage=Lineage(kind="bootstrap"), footprint=footprint
    )
    assert "## Cost and energy" in card
    assert f"| device-hours | {footprint['device_hours']} |" in card
    assert f"| energy (kWh) | {footprint['energy_kwh']} (tdp-estimate) |" in card
    assert card_lines(None) == []


def test_a_rank_count_below_one_is_refused():
    with pytest.raises(ValueError, match="ranks"):
        Meter().finish(ranks=0, grid_intensity_g_per_kwh=475.0)


def test_the_demo_scoreboard_shows_each_nights_cost():
    from sandbox.demo_nights import Night, day_window, scoreboard

    night = Night(number=1, window=day_window(datetime.date(2026, 11, 2)))
    night.cost = {"device_hours": 0.0425, "energy_kwh": 0.00031}
    header, _, row = scoreboard([night]).splitlines()
    assert "cost dev-h / kWh" in header
    assert "0.043 / 0.0003" in row
