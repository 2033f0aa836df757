"""Warmup–stable–decay learning rate, exactly as the study's table gives it.

With 1-based optimizer steps t = 1 … steps:
- warmup:  t ≤ warmup                        lr = peak · t / warmup
- stable:  warmup < t ≤ decay_start          lr = peak
- decay:   decay_start < t ≤ end             lr = min + (peak − min) · (end − t) / decay_steps,
           with end = decay_start + decay_steps
- after:                                     lr = min
so the last step of a run whose decay ends at `steps` trains at exactly `min` (0 in the study).
"""

from __future__ import annotations

from growup.config import ScheduleSpec


def wsd_lr(step: int, schedule: ScheduleSpec, peak: float, minimum: float = 0.0) -> float:
    """The learning rate of optimizer step `step` (1-based)."""
    if step < 1:
        raise ValueError(f"steps are 1-based, got {step}")
    if step <= schedule.warmup:
        return peak * step / schedule.warmup
    if step <= schedule.decay_start:
        return peak
    end = schedule.decay_start + schedule.decay_steps
    if step <= end:
        return minimum + (peak - minimum) * (end - step) / schedule.decay_steps
    return minimum
