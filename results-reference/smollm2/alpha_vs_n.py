"""SmolLM2's α against N and E1 judged on the trend (issue 26; the rule is E1_TREND_RULE.md).

    .venv/bin/python results-reference/smollm2/alpha_vs_n.py

Reads the committed ``logitrank spectrum`` runs beside this file (float32: ``spectrum`` (N = 32),
``spectrum-n64``, ``spectrum-n128``, ``spectrum-n256``, ``spectrum-n512``; bfloat16: ``spectrum-n<N>-bf16``),
measures the bfloat16 error on α where both dtypes ran (N = 64 and 128, the addendum's rule), takes the
N = 512 point from float32 when it exists and from bfloat16 otherwise, fits the saturating curve, judges
E1 and writes ``alpha-vs-n/{summary.json, table.md, alpha_vs_n.png, alpha_vs_n.pdf}``.
"""

import json
import sys
from pathlib import Path

from logitrank.verify import fit_saturating, judge_alpha_trend, plot_alpha_vs_n, trend_point

HERE = Path(__file__).resolve().parent
OUT = HERE / "alpha-vs-n"
FLOAT32 = {32: "spectrum", 64: "spectrum-n64", 128: "spectrum-n128", 256: "spectrum-n256", 512: "spectrum-n512"}
DTYPE_PAIRS = (64, 128)  # where bfloat16 is compared with float32 (the addendum, item 1)
DTYPE_LIMIT = 0.01  # the addendum, item 2


def done(folder: str) -> bool:
    return (HERE / folder / "summary.json").is_file()


def dtype_error() -> dict:
    """Largest |α_bf16 − α_fp32| over DTYPE_PAIRS and both indexings, and the spread's change."""
    rows = []
    for n in DTYPE_PAIRS:
        if done(FLOAT32[n]) and done(f"spectrum-n{n}-bf16"):
            f32, b16 = trend_point(HERE / FLOAT32[n]), trend_point(HERE / f"spectrum-n{n}-bf16")
            rows.append({"N": n, "alpha fp32": f32.alpha, "alpha bf16": b16.alpha,
                         "alpha original fp32": f32.alpha_original, "alpha original bf16": b16.alpha_original,
                         "|Δα| paper": abs(b16.alpha - f32.alpha),
                         "|Δα| original": abs(b16.alpha_original - f32.alpha_original),
                         "|Δspread|": abs(b16.spread - f32.spread),
                         "seconds fp32": f32.seconds, "seconds bf16": b16.seconds})
    if len(rows) < len(DTYPE_PAIRS):
        return {"pairs": rows, "error": None, "spread error": None}
    return {"pairs": rows, "error": max(max(r["|Δα| paper"], r["|Δα| original"]) for r in rows),
            "spread error": max(r["|Δspread|"] for r in rows)}


def main() -> int:
    errors = dtype_error()
    points, sources = [], {}
    for n, folder in FLOAT32.items():
        if done(folder):
            points.append(trend_point(HERE / folder))
            sources[n] = folder
        elif n == 512 and done("spectrum-n512-bf16") and errors["error"] is not None:
            points.append(trend_point(HERE / "spectrum-n512-bf16", dtype_error=errors["error"],
                                      spread_error=errors["spread error"]))
            sources[n] = "spectrum-n512-bf16"
    verdict = judge_alpha_trend(points)
    if (sources.get(512, "").endswith("-bf16") and errors["error"] > DTYPE_LIMIT
            and verdict.verdict != "not judged"):
        verdict = type(verdict)("not judged", f"bfloat16 error {errors['error']:.4f} > {DTYPE_LIMIT}: the verdict "
                                "waits for float32 N = 512 (addendum, item 3)", verdict.largest_n,
                                verdict.alpha_at_largest, verdict.fit)
    fit = verdict.fit or (fit_saturating([p.n for p in points], [p.alpha for p in points])
                          if len(points) >= 4 else None)
    OUT.mkdir(exist_ok=True)
    png, _ = plot_alpha_vs_n(points, fit, OUT, title="SmolLM2-135M: α against N (Shakespeare, k = 50)")
    summary = {
        "verdict": verdict.verdict, "reason": verdict.reason, "rule": "E1_TREND_RULE.md",
        "points": [{**p.__dict__, "source": sources[p.n]} for p in points],
        "dtype error": errors,
        "fit": None if fit is None else {
            "alpha_inf": fit.alpha_inf, "c": fit.c, "beta": fit.beta, "interval": list(fit.interval),
            "level": fit.level, "n_boot": fit.n_boot, "residual_sd": fit.residual_sd, "beta at bound": fit.at_bound,
            "bootstrap draws with beta at bound": fit.draws_at_bound,
        },
        "figure": png.name,
    }
    (OUT / "summary.json").write_text(json.dumps(summary, indent=1, default=float) + "\n")
    lines = ["| N | dtype | α (paper) | R² | α (original) | spread (1–16×) | time |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for p in points:
        err = f" ± {p.dtype_error:.3f}" if p.dtype_error else ""
        lines.append(f"| {p.n} | {p.dtype} | {p.alpha:.3f}{err} | {p.r_squared:.3f} | {p.alpha_original:.3f} | "
                     f"{p.spread:.3f} | {p.seconds / 60:.1f} min |")
    if fit is not None:
        lines.append("")
        lines.append(f"Saturating fit: α∞ = {fit.alpha_inf:.3f}, {fit.level:.0%} interval [{fit.interval[0]:.3f}, "
                     f"{fit.interval[1]:.3f}], β = {fit.beta:.3f}{' (at its bound)' if fit.at_bound else ''}, "
                     f"residual sd {fit.residual_sd:.4f}; {fit.draws_at_bound:.0%} of the bootstrap refits put β at a bound.")
    lines.append("")
    lines.append(f"**E1 on SmolLM2, judged on the trend: {verdict.verdict}** — {verdict.reason}")
    (OUT / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
