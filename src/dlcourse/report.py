"""Tables of final numbers and of the lab reports' claims, checked against our own runs.

Every lab ends by listing what the original student reports claimed and whether our numbers
confirm it. The verdict is computed from the runs, never typed in, so a re-run with other
parameters can overturn it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

# Claims and evidence are sentences: the book shows them whole, not cut at 50 characters.
pd.set_option("display.max_colwidth", None)


@dataclass(frozen=True)
class Claim:
    """One claim of a report: what it said, where, what we measured, and whether that agrees."""

    claim: str
    source: str
    evidence: str
    holds: bool | None  # None: our runs cannot decide (e.g. the profile is too small)


def claims_table(claims: Sequence[Claim]) -> pd.DataFrame:
    """A DataFrame with one row per claim and a verdict column: confirmed / not confirmed / undecided."""
    verdict = {True: "confirmed", False: "not confirmed", None: "undecided"}
    return pd.DataFrame(
        [{"claim": c.claim, "report": c.source, "our numbers": c.evidence, "verdict": verdict[c.holds]} for c in claims]
    )


def final_table(frame: pd.DataFrame, columns: Sequence[str], digits: int = 4) -> pd.DataFrame:
    """The given columns of a results frame, rounded for display (floats only)."""
    out = frame[list(columns)].copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].round(digits)
    return out
