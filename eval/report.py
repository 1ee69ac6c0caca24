"""An evaluation as JSON (for machines) and as one self-contained HTML page with a plot."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

LOWER_IS_BETTER = {"loss", "perplexity", "canary_leaks", "refusal_rate"}


def _plot(models: dict[str, dict[str, float]]) -> str:
    """Bars per metric, one colour per model; a base64 PNG (no files to lose)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wanted = ["loss", "rouge_l", "bleu", "reply_chars", "refusal_rate"]
    metrics = [m for m in wanted if any(m in scores for scores in models.values())]
    figure, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.2), squeeze=False)
    for axis, metric in zip(axes[0], metrics, strict=True):
        names = list(models)
        axis.bar(
            names,
            [models[n].get(metric, 0.0) for n in names],
            color=["#888", "#4a7", "#37c"][: len(names)],
        )
        if metric == "reply_chars":  # neither direction is better: compare with the agents'
            axis.set_title("reply length (chars)")
        else:
            better = "lower" if metric in LOWER_IS_BETTER else "higher"
            axis.set_title(f"{metric} ({better} is better)")
        axis.tick_params(axis="x", labelrotation=15)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def write_report(report: dict[str, Any], out_dir: Path, stem: str = "report") -> tuple[Path, Path]:
    """`report` holds `models` ({name: {metric: value}}) and anything else worth keeping."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{stem}.json"
    json_path.write_text(json.dumps(report, indent=2, default=str))
    models: dict[str, dict[str, float]] = report.get("models", {})
    metric_names = sorted({m for scores in models.values() for m in scores})
    rows = "".join(
        "<tr><th>{}</th>{}</tr>".format(
            html.escape(name), "".join(f"<td>{scores.get(m, '')}</td>" for m in metric_names)
        )
        for name, scores in models.items()
    )
    decision = report.get("decision", {})
    reasons = "".join(f"<li>{html.escape(str(r))}</li>" for r in decision.get("reasons", []))
    samples = "".join(
        f"<tr><td>{html.escape(s['prompt'])}</td><td>{html.escape(s['reference'])}</td>"
        + "".join(f"<td>{html.escape(s['replies'].get(n, ''))}</td>" for n in models)
        + "</tr>"
        for s in report.get("samples", [])
    )
    drift = report.get("drift")
    drift_section = ""
    if drift is not None:
        items = "".join(f"<li>{html.escape(str(d))}</li>" for d in drift) or "<li>none</li>"
        drift_section = f"<h2>Segments worse since the last switch</h2><ul>{items}</ul>"
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(report.get("title", "Evaluation"))}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:70em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}}</style></head>
<body><h1>{html.escape(report.get("title", "Evaluation"))}</h1>
<p>{html.escape(str(report.get("summary", "")))}</p>
<h2>Decision: {html.escape(str(decision.get("verdict", "n/a")))}</h2><ul>{reasons}</ul>
{drift_section}
<h2>Metrics</h2><table><tr><th>model</th>{"".join(f"<th>{html.escape(m)}</th>" for m in metric_names)}</tr>{rows}</table>
<img alt="metrics by model" src="data:image/png;base64,{_plot(models)}">
<h2>Sample replies</h2><table><tr><th>customer</th><th>agent wrote</th>{"".join(f"<th>{html.escape(n)}</th>" for n in models)}</tr>{samples}</table>
</body></html>"""
    html_path = out_dir / f"{stem}.html"
    html_path.write_text(page)
    return json_path, html_path
