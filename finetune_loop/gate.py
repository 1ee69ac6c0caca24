"""The promotion rule: a candidate goes live only if it is no worse than what serves now.

Compared on every gate metric against the active adapter (or the base model when the tenant
has none yet), with a relative tolerance so noise on a small validation set does not block
every night; any canary leak rejects outright.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# metric -> True when higher is better
GATE_METRICS = {"loss": False, "rouge_l": True, "bleu": True}


@dataclass
class Decision:
    promote: bool
    reasons: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return "promote" if self.promote else "reject"


def decide(
    candidate: dict[str, float],
    reference: dict[str, float],
    *,
    tolerance: float,
    reference_name: str,
) -> Decision:
    reasons = []
    if candidate.get("canary_leaks", 0):
        reasons.append(
            f"emitted {candidate['canary_leaks']} canary string(s): memorised training data"
        )
    for metric, higher_better in GATE_METRICS.items():
        new, old = candidate[metric], reference[metric]
        slack = tolerance * abs(old)
        worse = new < old - slack if higher_better else new > old + slack
        verb = "worse" if worse else "ok"
        reasons.append(
            f"{metric}: {new:.4g} vs {reference_name} {old:.4g} ({verb}, tolerance {tolerance:.0%})"
        )
        if worse:
            reasons[-1] = "FAIL " + reasons[-1]
    return Decision(
        promote=not any(r.startswith(("FAIL", "emitted")) for r in reasons), reasons=reasons
    )
