"""The figures papers A and B report, and the limits the claims judge against them (shared by every room).

Paper A, §3 and Appendix A.1: the singular values of a trained model's extended logit matrix
decay as a power law σ_i ∝ i^(−α) with α "slightly above ½"; the exponents it reports per model are
:data:`PAPER_ALPHA`.
"""

from __future__ import annotations

__all__ = ["ALPHA_BAND", "ALPHA_SPREAD", "MIN_R2", "PAPER_ALPHA", "in_alpha_band"]

#: "Slightly above ½": every exponent paper A reports for a trained model lies in (0.5, 0.65].
ALPHA_BAND = (0.5, 0.65)
#: Largest spread of α allowed across downsizing, datasets or column choices ("similar α").
ALPHA_SPREAD = 0.1
#: Smallest weighted R² of a power-law fit that may support "holds" (issue 11).
MIN_R2 = 0.9
#: α reported by paper A (Figure 1 / Appendix A.1) for each trained model.
PAPER_ALPHA = {"OLMo-7b": 0.536, "OLMo-1b": 0.561, "Gemma-1b": 0.565, "Llama-1b": 0.573, "Mamba-1.4b": 0.563}


def in_alpha_band(alpha: float, band: tuple[float, float] = ALPHA_BAND) -> bool:
    """α inside E1's band: open below, closed above (0.5 < α ≤ 0.65 by default)."""
    return band[0] < alpha <= band[1]
