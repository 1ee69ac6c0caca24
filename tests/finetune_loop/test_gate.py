"""The promotion rule on paired per-example scores."""

from __future__ import annotations

from finetune_loop.gate import decide, paired_interval


def scores(loss: list[float], rouge: list[float], bleu: list[float]) -> dict[str, list[float]]:
    return {"loss": loss, "rouge_l": rouge, "bleu": bleu}


REFERENCE = scores(
    [2.0, 2.2, 1.9, 2.1, 2.0, 2.3], [0.3, 0.1, 0.5, 0.2, 0.4, 0.3], [5, 2, 9, 4, 6, 3]
)


def test_a_candidate_confidently_worse_on_loss_is_rejected_with_the_reason() -> None:
    worse = scores([2.6, 2.9, 2.5, 2.8, 2.7, 3.0], REFERENCE["rouge_l"], REFERENCE["bleu"])
    decision = decide(worse, REFERENCE, tolerance=0.02, reference_name="active")
    assert not decision.promote
    assert [r.split(":")[0] for r in decision.reasons if r.startswith("FAIL")] == ["FAIL loss"]


def test_noise_on_a_few_generated_replies_does_not_block_a_better_candidate() -> None:
    # lower mean ROUGE-L on six replies, but the pairs disagree: not confidently worse
    noisy = scores(
        [1.5, 1.6, 1.4, 1.7, 1.5, 1.6], [0.5, 0.0, 0.2, 0.3, 0.1, 0.4], [6, 0, 8, 5, 2, 4]
    )
    decision = decide(noisy, REFERENCE, tolerance=0.02, reference_name="active")
    assert decision.promote, decision.reasons


def test_within_tolerance_passes_and_any_canary_leak_rejects() -> None:
    same = scores([x * 1.01 for x in REFERENCE["loss"]], REFERENCE["rouge_l"], REFERENCE["bleu"])
    assert decide(same, REFERENCE, tolerance=0.02, reference_name="base").promote
    leaked = decide(same, REFERENCE, tolerance=0.02, reference_name="base", canary_leaks=1)
    assert not leaked.promote and "canary" in leaked.reasons[0]


def test_the_bootstrap_interval_brackets_the_mean_difference() -> None:
    mean, low, high = paired_interval([1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 2.0, 3.0])
    assert (mean, low, high) == (1.0, 1.0, 1.0)
    mean, low, high = paired_interval([1.0, 0.0, 2.0], [0.0, 1.0, 0.0])
    assert low < mean < high


def test_a_candidate_that_grounds_worse_than_the_active_adapter_is_rejected() -> None:
    reference = {**REFERENCE, "grounded": [1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0]}
    candidate = {**REFERENCE, "grounded": [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]}
    decision = decide(candidate, reference, tolerance=0.02, reference_name="active")
    assert not decision.promote
    assert [r.split(":")[0] for r in decision.reasons if r.startswith("FAIL")] == ["FAIL grounded"]
    # A tenant without documents has no grounded prompts: the metric is not part of the vote.
    plain = decide(
        {**REFERENCE, "grounded": []},
        {**REFERENCE, "grounded": []},
        tolerance=0.02,
        reference_name="active",
    )
    assert plain.promote and not any(r.startswith("grounded") for r in plain.reasons)
