"""The promotion rule: a candidate goes live only if it is no worse than what serves now.

On every gate metric the candidate is compared with the active adapter (or the base model when
the tenant has none yet) on the same examples, pair by pair. It fails a metric when it is
*confidently* worse by more than the tolerance: the upper end of a 95% paired-bootstrap
interval of (candidate - reference) is below -tolerance x |reference mean|. A few dozen
generated replies make ROUGE-L and BLEU noisy; comparing means alone would reject good
candidates on luck and pass bad ones on luck. Any canary leak rejects outright.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

# metric -> True when higher is better. "grounded": the share of replies to prompts with
# help-center articles that pass serving's answer check; only tenants with documents have it.
GATE_METRICS = {"loss": False, "rouge_l": True, "bleu": True, "grounded": True}
RESAMPLES = 2000


@dataclass
class Decision:
    promote: bool
    reasons: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return "promote" if self.promote else "reject"


def paired_interval(
    candidate: Sequence[float], reference: Sequence[float], seed: int = 0
) -> tuple[float, float, float]:
    """(mean, low, high) of candidate - reference, 95% percentile bootstrap over pairs."""
    diffs = [c - r for c, r in zip(candidate, reference, strict=True)]
    if not diffs:
        return 0.0, 0.0, 0.0
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(diffs, k=len(diffs))) / len(diffs) for _ in range(RESAMPLES))
    return sum(diffs) / len(diffs), means[int(0.025 * RESAMPLES)], means[int(0.975 * RESAMPLES) - 1]


def decide(
    candidate: dict[str, list[float]],
    reference: dict[str, list[float]],
    *,
    tolerance: float,
    reference_name: str,
    canary_leaks: int = 0,
) -> Decision:
    """`candidate` and `reference`: per-example values of each gate metric, paired."""
    reasons = []
    failed = bool(canary_leaks)
    if canary_leaks:
        reasons.append(f"FAIL emitted {canary_leaks} canary string(s): memorised training data")
    for metric, higher_better in GATE_METRICS.items():
        ours, theirs = candidate.get(metric, []), reference.get(metric, [])
        if not ours and not theirs:
            continue  # not measured on this set (no grounded prompts)
        sign = 1.0 if higher_better else -1.0  # orient so that positive = candidate better
        mean, low, high = paired_interval([sign * v for v in ours], [sign * v for v in theirs])
        slack = tolerance * abs(sum(theirs) / len(theirs)) if theirs else 0.0
        worse = high < -slack
        failed |= worse
        reasons.append(
            f"{'FAIL ' if worse else ''}{metric}: {sum(ours) / max(1, len(ours)):.4g} vs "
            f"{reference_name} {sum(theirs) / max(1, len(theirs)):.4g} "
            f"(better by {mean:+.3g}, 95% CI [{low:+.3g}, {high:+.3g}], tolerance {slack:.3g})"
        )
    return Decision(promote=not failed, reasons=reasons)
