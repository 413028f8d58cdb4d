"""Verdicts on the reports' claims that know their noise: one function decides them all.

A lab states each claim of a student report as data (`notebooks/claims/<lab stem>.yml`, read by
`load_claims`), measures one *effect* per seed, signed so that a positive value supports the
claim (a paired difference per seed where the claim compares two settings), and hands the
effects to `decide`:

- **confirmed**: the 95% interval of the mean effect lies entirely above 0;
- **not confirmed**: the interval lies entirely below 0;
- **undecided**: the interval covers 0 (within noise), fewer seeds than `min_seeds`, an effect
  that is not a finite number, or a failed precondition (a claim about a GPU measured on a CPU,
  too few optimizer steps, too few draws); the reason is kept and shown.

The interval is Student's t 95% confidence interval of the mean over seeds,
mean ± t(0.975, n-1) · s / √n, with s the sample standard deviation (ddof = 1). The t quantiles
for 1..30 degrees of freedom are the standard table values (`T975`, checked against a numerical
integral of the t density in tests/test_evidence.py); beyond 30 the Cornish-Fisher expansion
around the normal quantile is used (error below 1e-4). With 2 seeds t = 12.7, so only a very
steady effect is decided: that is the honest price of two draws.

Citations use one style in the whole book: `R1 §3.2` is section 3.2 of report 1. The five
student reports are R0..R4 (the files 000..004 of the course's seed reports), described on the
book's page "The reports" (book/reports.md), where each has the anchor `r0`..`r4`;
`claims_table` links every citation there.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..report import Table
from ..settings import project_root

#: Student t quantiles t(0.975, df) for df = 1..30 (two-sided 95%), from the standard table.
T975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
        2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
        2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423)
_Z975 = 1.959964
VERDICTS = ("confirmed", "not confirmed", "undecided")
#: A citation: report key R0..R4, a space, the section sign and the report's own section name.
CITE = re.compile(r"^(R[0-4]) §(\S.*)$")
#: Where the reports page is, seen from a lab page of the built book (book/labs/*.html).
REPORTS_PAGE = "../reports.html"
CLAIM_FIELDS = ("id", "cite", "report_says", "claim", "effect", "runs")
_OPTIONAL = ("preconditions",)
_DEVICE_WORDS = {"cuda": "a GPU (cuda)", "cpu": "a CPU", "mps": "an Apple GPU (mps)"}


def t_quantile(df: int) -> float:
    """t(0.975, df): the table for df <= 30, the Cornish-Fisher expansion beyond."""
    if isinstance(df, bool) or not isinstance(df, (int, np.integer)) or df < 1:
        raise ValueError(f"df={df!r} is not valid; it must be an integer >= 1")
    if df <= len(T975):
        return T975[df - 1]
    z = _Z975
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


# ---------------------------------------------------------------- preconditions

@dataclass(frozen=True)
class Precondition:
    """Whether a claim can be tested with these runs at all; `reason` is shown when not."""

    ok: bool
    reason: str


def precondition(ok: bool, reason: str) -> Precondition:
    """Any other condition, in words: `precondition(epochs >= 5, "needs at least 5 epochs, ran 2")`."""
    return Precondition(bool(ok), str(reason))


def needs_device(kind: str, device) -> Precondition:
    """The claim is about `kind` ("cuda", "cpu", "mps"); `device` is what the runs used
    (a string such as "cpu" or "cuda:0", or a torch.device)."""
    used = str(getattr(device, "type", device)).split(":")[0]
    want, got = _DEVICE_WORDS.get(kind, kind), _DEVICE_WORDS.get(used, used)
    return Precondition(used == kind, f"a claim about {want}, measured on {got}")


def needs_steps(minimum: int, ran: int) -> Precondition:
    """Enough optimizer steps (or epochs: the words say steps) for the claim to mean anything."""
    return Precondition(ran >= minimum, f"needs at least {minimum:,} steps, ran {ran:,}")


def needs_seeds(minimum: int, n: int) -> Precondition:
    """Enough independent draws (seeds) for a spread."""
    return Precondition(n >= minimum, f"needs at least {minimum:,} seeds, ran {n:,}")


# ---------------------------------------------------------------- verdicts

@dataclass(frozen=True)
class Verdict:
    """A claim's verdict with its evidence: the mean effect over seeds, its 95% interval, n (the
    draws measured) and `used`, how many of them were numbers (the mean and interval's draws)."""

    verdict: str
    effect: float
    low: float
    high: float
    n: int
    reason: str = ""
    used: int | None = None  # None: all n

    @property
    def draws(self) -> str:
        """The draws as a table shows them: "3", or "2 of 3" when only 2 were numbers."""
        return str(self.n) if self.used is None or self.used == self.n else f"{self.used} of {self.n}"


def decide(effects: Iterable[float], *, preconditions: Sequence[Precondition] = (), min_seeds: int = 2,
           limits: tuple[float, float] | None = None) -> Verdict:
    """The verdict on one claim from its per-seed effects (> 0 supports the claim).

    The mean and its Student-t 95% interval are always computed (NaN bounds for n < 2), so a
    row shows what was measured even when it cannot decide. Undecided, in this order: a failed
    precondition (its reason), an effect that is not finite, fewer than `min_seeds` seeds, or an
    interval that covers 0 ("within noise").

    `limits=(low, high)` are the values the effect can take (a correlation: (-1, 1)); the
    interval is cut to them, so it never shows a correlation above 1. The true mean lies inside
    the limits, so the cut loses no coverage; with 0 inside them it changes no verdict.
    """
    values = np.asarray(list(effects), dtype=float).ravel()
    for p in preconditions:
        if not isinstance(p, Precondition):
            raise ValueError(f"preconditions={preconditions!r} is not valid; give Precondition objects "
                             "(needs_device, needs_steps, needs_seeds, precondition)")
    n = len(values)
    finite = values[np.isfinite(values)]
    mean = float(finite.mean()) if len(finite) else math.nan
    low = high = math.nan
    if len(finite) >= 2:
        half = t_quantile(len(finite) - 1) * float(finite.std(ddof=1)) / math.sqrt(len(finite))
        low, high = mean - half, mean + half
    if limits is not None:
        floor, ceiling = (float(x) for x in limits)
        if not floor < 0 < ceiling:
            raise ValueError(f"limits={limits!r} is not valid; give (low, high) with low < 0 < high")
        low, high = max(low, floor), min(high, ceiling)
    used = len(finite)
    failed = [p.reason for p in preconditions if not p.ok]
    if failed:
        return Verdict("undecided", mean, low, high, n, "; ".join(failed), used)
    if used < n or n == 0:
        why = "no effect was measured" if n == 0 else f"the effect is not a number for {n - used} of {n} draws"
        return Verdict("undecided", mean, low, high, n, why, used)
    if n < min_seeds:
        return Verdict("undecided", mean, low, high, n, f"needs at least {min_seeds} seeds, ran {n}")
    if low > 0:
        return Verdict("confirmed", mean, low, high, n)
    if high < 0:
        return Verdict("not confirmed", mean, low, high, n)
    return Verdict("undecided", mean, low, high, n, "within noise: the interval covers 0")


# ---------------------------------------------------------------- claims as data

def claims_path(lab: str) -> Path:
    """notebooks/claims/<lab>.yml; `lab` is the notebook stem ("lab01_depth") or its name ("depth")."""
    folder = project_root() / "notebooks" / "claims"
    exact = folder / f"{lab}.yml"
    if exact.exists():
        return exact
    found = sorted(folder.glob(f"lab[0-9][0-9]_{lab}.yml"))
    if len(found) != 1:
        known = sorted(p.stem for p in folder.glob("*.yml"))
        raise ValueError(f"lab={lab!r} is not valid; choose one of: {', '.join(known) or '(no claims files)'}")
    return found[0]


def check_claims(claims, source: str = "claims") -> list[dict]:
    """The schema of a claims file: a list of mappings with the fields of `CLAIM_FIELDS`
    (strings; `runs` may be a string or a list), optional `preconditions`, unique snake_case ids
    and citations like `R1 §3.2`. Returns the claims; a bad one raises ValueError naming it."""
    if not isinstance(claims, list) or not claims:
        raise ValueError(f"{source} is not valid; it must be a non-empty list of claims")
    seen = set()
    for i, c in enumerate(claims):
        where = f"{source}[{i}]"
        if not isinstance(c, Mapping):
            raise ValueError(f"{where}={c!r} is not valid; a claim is a mapping of {', '.join(CLAIM_FIELDS)}")
        missing = [k for k in CLAIM_FIELDS if k not in c]
        unknown = [k for k in c if k not in CLAIM_FIELDS + _OPTIONAL]
        if missing or unknown:
            raise ValueError(f"{where} is not valid; missing {missing}, unknown {unknown}; "
                             f"the fields are {', '.join(CLAIM_FIELDS + _OPTIONAL)}")
        if not isinstance(c["id"], str) or not re.fullmatch(r"[a-z][a-z0-9_]*", c["id"]) or c["id"] in seen:
            raise ValueError(f"{where}.id={c['id']!r} is not valid; it must be a new snake_case name")
        seen.add(c["id"])
        if not isinstance(c["cite"], str) or not CITE.match(c["cite"]):
            raise ValueError(f"{where}.cite={c['cite']!r} is not valid; write it like 'R1 §3.2' (report R0..R4)")
        for k in ("report_says", "claim", "effect"):
            if not isinstance(c[k], str) or not c[k].strip():
                raise ValueError(f"{where}.{k}={c[k]!r} is not valid; it must be a sentence")
    return claims


def load_claims(lab: str, values: Mapping[str, object] | None = None) -> list[dict]:
    """The claims of one lab, from notebooks/claims/<lab stem>.yml, checked by `check_claims`.

    `values` maps the names of parameters that a claim's text uses (a tolerance such as
    `same_tol`) to this build's values: in `claim` and `effect`, each name is shown with its value
    beside it ("same_tol (0.1)"), so that a reader of the table need not look it up. A name that
    no claim mentions is an error (a misspelt name would otherwise show nothing)."""
    path = claims_path(lab)
    with open(path, encoding="utf-8") as f:
        claims = check_claims(yaml.safe_load(f), source=path.name)
    for name, value in (values or {}).items():
        word = re.compile(rf"\b{re.escape(name)}\b")
        if not any(word.search(c[field]) for c in claims for field in ("claim", "effect")):
            raise ValueError(f"values names {name!r}, which no claim in {path.name} mentions; "
                             "pass only the parameters the claims' text uses")
        shown = f"{name} ({value:g})" if isinstance(value, (int, float)) else f"{name} ({value})"
        for c in claims:
            for field in ("claim", "effect"):
                c[field] = word.sub(lambda _m: shown, c[field])
    return claims


# ---------------------------------------------------------------- the table

def cite_link(cite: str) -> str:
    """`R1 §3.2` as an HTML link to report R1 on the reports page."""
    m = CITE.match(cite)
    if not m:
        raise ValueError(f"cite={cite!r} is not valid; write it like 'R1 §3.2' (report R0..R4)")
    return f'<a href="{REPORTS_PAGE}#{m.group(1).lower()}">{html.escape(cite)}</a>'


def _number(x: float, digits: int) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


class ClaimsTable(Table):
    """A claims table: displayed as every table of the book (`report.show_table`), its index (the
    claim ids) labelled, sentences whole and escaped, the citations as links."""

    html_columns = ("the report said",)
    table_kind = "claims"  # pages.css: its headers break between words only (sentences fill the width)


def claims_table(claims: list[dict], verdicts: Mapping[str, Verdict], digits: int = 3) -> pd.DataFrame:
    """One row per claim (indexed by its id): the claim in our words, what the report said (beside
    it, so a reader sees what was tested against what was said) ending with the report's
    citation (a link to the reports page; in the same cell, so the table fits the page), what
    the effect measures, `draws` (the independent measurements of it: seeds, parts of a search
    or epochs, as `effect` says), mean effect, 95% interval, verdict and the reason when
    undecided. Every claim needs a verdict and every verdict a claim."""
    ids = [c["id"] for c in claims]
    missing, unknown = [i for i in ids if i not in verdicts], [k for k in verdicts if k not in ids]
    if missing or unknown:
        raise ValueError(f"verdicts is not valid; no verdict for {missing}, no claim for {unknown}")
    rows = []
    for c in claims:
        v = verdicts[c["id"]]
        if not isinstance(v, Verdict):
            raise ValueError(f"verdicts[{c['id']!r}]={v!r} is not valid; give the Verdict of evidence.decide")
        said = f'{html.escape(c["report_says"])} ({cite_link(c["cite"])})'
        rows.append({"claim": c["claim"], "the report said": said,
                     "effect": c["effect"], "draws": v.draws,
                     "mean effect": _number(v.effect, digits),
                     "interval": "—" if not (math.isfinite(v.low) and math.isfinite(v.high))
                     else f"[{_number(v.low, digits)}, {_number(v.high, digits)}]",
                     "verdict": v.verdict, "reason": v.reason or "—"})
    table = ClaimsTable(rows, index=pd.Index(ids, name="id"))
    table.digits = digits
    return table


__all__ = ["Precondition", "precondition", "needs_device", "needs_steps", "needs_seeds", "Verdict", "decide",
           "load_claims", "check_claims", "claims_path", "claims_table", "cite_link", "t_quantile", "T975",
           "VERDICTS", "CITE", "REPORTS_PAGE"]
