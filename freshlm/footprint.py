"""What a training or evaluation run cost: device-hours, CPU-hours, peak memory, energy, CO2e.

Usage (a training rank, an evaluation)::

    meter = Meter()                       # at the start of the run
    ...
    footprint = meter.finish(ranks=world)  # a JSON dict for the manifest and the model card

**Measured:** wall time, this process's CPU time (user + system, its reaped children included),
its peak resident memory, and on a GPU the peak memory PyTorch allocated and, where NVML is
present (the ``nvidia-ml-py`` package and a Volta or newer GPU), the energy the board reports
having used.

**Estimated** where nothing reports energy (CPUs, and GPUs without NVML): power times time, at
the board power (TDP) of the device kind from :data:`DEVICE_TDP_W` (vendor datasheets; an
unknown GPU counts as :data:`DEFAULT_GPU_TDP_W`) for every device-hour, plus
:data:`CPU_WATTS_PER_CORE` for every CPU-hour. TDP is an upper bound for a busy device, so the
estimate errs high. ``energy_source`` says which was used.

A multi-rank run (DeepSpeed) is measured on rank 0 and scaled by the number of ranks: ranks do
the same work in lockstep. ``device_hours`` counts accelerator-hours; on a machine without
one, the ranks run on CPU cores and ``device_hours`` counts rank-hours of ``device_kind``
``cpu`` (their energy is then the CPU-hours', never counted twice).

``kg_co2e`` is ``energy_kwh`` at ``FRESHLM_GRID_INTENSITY_G_PER_KWH``.

Importing this module is cheap: torch is only looked at if the run already imported it.
"""

from __future__ import annotations

import logging
import resource
import sys
import time
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

#: Board power (W) per accelerator kind, matched as a substring of the device's name.
DEVICE_TDP_W: dict[str, float] = {
    "H200": 700.0,
    "H100": 700.0,
    "A100": 400.0,
    "L40S": 350.0,
    "L40": 300.0,
    "A10G": 150.0,
    "A10": 150.0,
    "V100": 300.0,
    "L4": 72.0,
    "T4": 70.0,
}
DEFAULT_GPU_TDP_W = 300.0
#: A server CPU's TDP over its cores (about 200 W for 20 cores): the power of one busy core.
CPU_WATTS_PER_CORE = 10.0
_J_PER_KWH = 3.6e6


def device_tdp_w(device_name: str) -> float:
    """The board power assumed for a GPU called ``device_name`` (``NVIDIA H100 80GB HBM3``)."""
    upper = device_name.upper()
    for kind in sorted(DEVICE_TDP_W, key=len, reverse=True):  # L40S before L40 before L4
        if kind in upper:
            return DEVICE_TDP_W[kind]
    return DEFAULT_GPU_TDP_W


def energy_kwh(
    *, cpu_hours: float, device_hours: float, device_name: str | None, device_joules: float | None
) -> tuple[float, str]:
    """The run's energy in kWh and where it came from (``nvml`` or ``tdp-estimate``)."""
    cpu_kwh = cpu_hours * CPU_WATTS_PER_CORE / 1000.0
    if device_name is None:
        return cpu_kwh, "tdp-estimate"
    if device_joules is not None:
        return cpu_kwh + device_joules / _J_PER_KWH, "nvml"
    return cpu_kwh + device_hours * device_tdp_w(device_name) / 1000.0, "tdp-estimate"


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _peak_rss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cuda() -> Any | None:
    """torch.cuda when this run already uses torch and has a GPU; never imports torch."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        return torch.cuda if torch.cuda.is_available() else None
    except Exception:  # a broken driver must not fail the run it measures
        return None


class _Nvml:
    """The board's energy counter (mJ since the driver loaded), where NVML has one."""

    def __init__(self, cuda: Any) -> None:
        self.handle = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(cuda.current_device())
            self._read = pynvml.nvmlDeviceGetTotalEnergyConsumption
            self.start = self._read(self.handle)
        except Exception:  # no package, no driver, or a GPU older than Volta
            self.handle = None

    def joules(self) -> float | None:
        if self.handle is None:
            return None
        try:
            return (self._read(self.handle) - self.start) / 1000.0
        except Exception:
            return None


def _sig(value: float, digits: int = 6) -> float:
    return float(f"{value:.{digits}g}")


class Meter:
    """Measures one run from construction to :meth:`finish`."""

    def __init__(self) -> None:
        self._wall = time.monotonic()
        self._cpu = _cpu_seconds()
        cuda = _cuda()
        self._nvml = _Nvml(cuda) if cuda is not None else None

    def finish(
        self, *, ranks: int = 1, grid_intensity_g_per_kwh: float | None = None
    ) -> dict[str, Any]:
        """The footprint so far, for ``ranks`` ranks doing what this process did."""
        if ranks < 1:
            raise ValueError(f"ranks={ranks!r}: a run has at least one rank")
        if grid_intensity_g_per_kwh is None:
            from freshlm.settings import get_settings

            grid_intensity_g_per_kwh = get_settings().grid_intensity_g_per_kwh
        wall_h = (time.monotonic() - self._wall) / 3600.0
        cpu_hours = (_cpu_seconds() - self._cpu) / 3600.0 * ranks
        cuda = _cuda()
        device_name = peak_device_mb = joules = None
        if cuda is not None:
            device_name = str(cuda.get_device_name(cuda.current_device()))
            peak_device_mb = _sig(cuda.max_memory_allocated() / 2**20)
            own = self._nvml.joules() if self._nvml is not None else None
            joules = own * ranks if own is not None else None
        kwh, source = energy_kwh(
            cpu_hours=cpu_hours,
            device_hours=wall_h * ranks,
            device_name=device_name,
            device_joules=joules,
        )
        return {
            "device_kind": device_name or "cpu",
            "devices": ranks,
            "wall_hours": _sig(wall_h),
            "device_hours": _sig(wall_h * ranks),
            "cpu_hours": _sig(cpu_hours),
            "peak_memory_mb": _sig(_peak_rss_mb()),
            "peak_device_memory_mb": peak_device_mb,
            "energy_kwh": _sig(kwh),
            "energy_source": source,
            "grid_intensity_g_per_kwh": grid_intensity_g_per_kwh,
            "kg_co2e": _sig(kwh * grid_intensity_g_per_kwh / 1000.0),
        }


def card_lines(footprint: Mapping[str, Any] | None) -> list[str]:
    """The model card's "Cost and energy" section (empty when nothing was measured)."""
    if not footprint:
        return []
    rows = [
        ("device", f"{footprint.get('devices')} × {footprint.get('device_kind')}"),
        ("device-hours", footprint.get("device_hours")),
        ("CPU-hours", footprint.get("cpu_hours")),
        ("peak memory (MB)", footprint.get("peak_memory_mb")),
        ("peak device memory (MB)", footprint.get("peak_device_memory_mb")),
        ("energy (kWh)", f"{footprint.get('energy_kwh')} ({footprint.get('energy_source')})"),
        (
            "kg CO2e",
            f"{footprint.get('kg_co2e')} at {footprint.get('grid_intensity_g_per_kwh')} g/kWh",
        ),
    ]
    lines = ["## Cost and energy", "", "Training run, as measured by `freshlm.footprint`:", ""]
    lines += ["| measure | value |", "|---|---|"]
    lines += [f"| {name} | {'—' if value is None else value} |" for name, value in rows]
    return [*lines, ""]
