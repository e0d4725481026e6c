"""The results table: the article's table of R@1 and the change +TCM made to it, to OPIS and to
eps-OPIS (METHOD.md, "OPIS", "epsilon-OPIS"), with one row per baseline / +TCM comparison
found under a runs folder, and its exports (CSV, Markdown, LaTeX).

A comparison is a plain pair (``<name>/{baseline,tcm}``), a repeats folder (``seed-<n>/``
pairs) or a study cell (a repeats folder inside a study, a folder holding ``study.json``),
labelled as the app's run picker labels it. Numbers come from each run's ``metrics.json``
(the test split, or ``validation``): R@1 is the mean over seeds, each change the mean of the
per-seed changes with its 95% Student t interval across seeds (``repeats.summary_changes``,
the same numbers as ``summary.json``); with one seed the interval bounds are NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tcm_core.data.registry import dataset_kind
from tcm_core.errors import TCMError
from tcm_core.experiments.study import SPEC as STUDY_MARK
from tcm_core.training import runs
from tcm_core.training.repeats import SCORES, find_repeats, seed_pairs, summary_changes

SPLITS = ("test", "validation")
KINDS = ("pair", "repeats", "study")
R1_BASE, R1_TCM = "R@1 baseline", "R@1 +TCM"
CHANGES = {"ΔR@1 (pts)": "recall_at_1_change_pts", "ΔOPIS (%)": "opis_change_pct",
           "Δε-OPIS (%)": "eps_opis_change_pct"}  # column -> key of ``summary_changes``
SETTINGS = ["source", "kind", "dataset", "backbone", "loss", "batch_size", "seeds"]
COLUMNS = SETTINGS + [R1_BASE, R1_TCM] + [f"{c}{end}" for c in CHANGES for end in ("", " CI low", " CI high")]


@dataclass(frozen=True)
class Comparison:
    """One row of the table: its picker label, kind (``KINDS``) and its pair per seed."""

    source: str
    kind: str
    pairs: tuple[runs.RunPair, ...]


def studies(root) -> list[Path]:
    """Study folders directly under ``root`` (those holding ``study.json``), by name."""
    root = Path(root)
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / STUDY_MARK).is_file()) if root.is_dir() else []


def comparisons(root, prefix: str = "") -> list[Comparison]:
    """Every comparison under ``root`` in the run picker's order: pairs and repeats newest
    first, then each study's cells by name; labels start with ``prefix``."""
    root = Path(root)
    folders = [(p.root, "pair", (p,)) for p in runs.find_pairs(root)]
    folders += [(f, "repeats", tuple(seed_pairs(f).values())) for f in find_repeats(root)]
    folders.sort(key=lambda f: f[0].stat().st_mtime, reverse=True)
    found = [Comparison(prefix + folder.name, kind, pairs) for folder, kind, pairs in folders]
    for study in studies(root):
        found += [Comparison(f"{prefix}{study.name}/{cell.name}", "study", tuple(seed_pairs(cell).values()))
                  for cell in sorted(find_repeats(study), key=lambda p: p.name)]
    return found


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise TCMError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
    return split


def _scores(run_dir: Path, split: str) -> dict:
    """The run's R@1, MAP@R, OPIS and eps-OPIS on ``split`` (NaN where it was not measured)."""
    metrics = runs.load_metrics(run_dir)
    if split == "validation":
        metrics = metrics.get("validation") or {}
    return {k: math.nan if metrics.get(k) is None else float(metrics[k]) for k in SCORES}


def _settings(pair: runs.RunPair) -> dict:
    """Dataset, backbone (recorded, else configured, else the default for the data), loss, batch."""
    metrics = runs.load_metrics(pair.baseline)
    try:
        config = runs.load_config(pair.baseline).to_dict()
    except TCMError:  # a run without config.json: what metrics.json says
        config = {"dataset": metrics.get("dataset"), "loss": metrics.get("loss")}
    backbone = metrics.get("backbone") or config.get("backbone")
    if backbone is None and config.get("dataset"):
        from tcm_core.training.setup import DEFAULT_BACKBONE

        try:
            backbone = DEFAULT_BACKBONE[dataset_kind(config["dataset"])]
        except TCMError:
            pass
    batch = config.get("batch_size")
    return {"dataset": config.get("dataset"), "backbone": backbone, "loss": config.get("loss"),
            "batch_size": math.nan if batch is None else int(batch)}


def comparison_row(comparison: Comparison, split: str = "test") -> dict:
    """One table row (``COLUMNS``) for a comparison."""
    per_seed = [{side: _scores(getattr(pair, side), split) for side in runs.PAIR} for pair in comparison.pairs]
    changes = summary_changes({"per_seed": per_seed})
    row = {"source": comparison.source, "kind": comparison.kind, **_settings(comparison.pairs[0]),
           "seeds": len(per_seed), R1_BASE: _mean([s["baseline"]["recall_at_1"] for s in per_seed]),
           R1_TCM: _mean([s["tcm"]["recall_at_1"] for s in per_seed])}
    for column, key in CHANGES.items():
        iv = changes[key]
        row.update({column: iv.value, f"{column} CI low": iv.low, f"{column} CI high": iv.high})
    return row


def _mean(values) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def results_table(root, *, prefix: str = "", split: str = "test", damaged: list | None = None) -> pd.DataFrame:
    """One row per comparison under ``root`` (``COLUMNS``; shares and changes as numbers, NaN
    where undefined); ``prefix`` starts every source label (the app's ``"example: "``). A
    damaged run folder raises ``TCMError``, or, given a ``damaged`` list, is left out with its
    message appended there."""
    split = _check_split(split)
    rows = []
    for c in comparisons(root, prefix):
        try:
            rows.append(comparison_row(c, split))
        except TCMError as exc:
            if damaged is None:
                raise
            damaged.append(str(exc))
    table = pd.DataFrame(rows, columns=COLUMNS)
    return table.astype({c: "Int64" if c in ("batch_size", "seeds") else float for c in COLUMNS[len(SETTINGS) - 2:]})


# ------------------------------------------------------------------ exports

HEADERS = {"source": "Source", "dataset": "Dataset", "backbone": "Backbone", "loss": "Loss",
           "batch_size": "Batch", "seeds": "Seeds", R1_BASE: "R@1 baseline (%)", R1_TCM: "R@1 +TCM (%)",
           **{c: c for c in CHANGES}}
LATEX_HEADERS = {**HEADERS, "ΔR@1 (pts)": r"$\Delta$R@1 (pts)", "ΔOPIS (%)": r"$\Delta$OPIS (\%)",
                 "Δε-OPIS (%)": r"$\Delta\varepsilon$-OPIS (\%)", R1_BASE: r"R@1 baseline (\%)",
                 R1_TCM: r"R@1 +TCM (\%)"}
_NUMERIC = {"batch_size", "seeds", R1_BASE, R1_TCM, *CHANGES}


def to_csv(df: pd.DataFrame) -> str:
    """The table as CSV, every column, numbers to 6 significant digits, NaN as empty."""
    return df.to_csv(index=False, float_format="%.6g")


def _number(value, fmt: str, wrap: Callable[[str], str]) -> str | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return wrap(format(value, fmt))


def _cells(row, missing: str, wrap: Callable[[str], str]) -> list[str]:
    """The display texts of a row: R@1 in percent, each change with its interval in brackets."""
    out = []
    for column in HEADERS:
        value = row[column]
        if column in CHANGES:
            text = _number(value, "+.1f", wrap)
            low, high = (_number(row[f"{column} CI {end}"], "+.1f", wrap) for end in ("low", "high"))
            if text is not None and low is not None and high is not None:
                text += f" [{low}, {high}]"
        elif column in (R1_BASE, R1_TCM):
            text = _number(100 * value, ".1f", wrap)
        elif column in ("batch_size", "seeds"):
            text = None if pd.isna(value) else str(int(value))
        else:
            text = None if value is None or pd.isna(value) else str(value)
        out.append(missing if text is None else text)
    return out


def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub Markdown table: a header row, its rule, then one line per row. R@1 in percent,
    changes to one decimal with their 95% interval across seeds in brackets where there is one."""
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", r"\|") for c in cells) + " |"

    rule = ["---:" if c in _NUMERIC else "---" for c in HEADERS]
    body = [line(_cells(row, "—", str)) for _, row in df.iterrows()]
    return "\n".join([line(HEADERS.values()), line(rule).replace(" ", ""), *body]) + "\n"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def to_latex(df: pd.DataFrame) -> str:
    """A LaTeX ``tabular`` (no packages needed): numbers in math mode, changes with their
    interval in brackets, text escaped."""
    align = "".join("r" if c in _NUMERIC else "l" for c in HEADERS)
    lines = [rf"\begin{{tabular}}{{{align}}}", r"\hline", " & ".join(LATEX_HEADERS.values()) + r" \\", r"\hline"]
    for _, row in df.iterrows():
        texts = _cells(row.map(lambda v: latex_escape(v) if isinstance(v, str) else v), "--", lambda s: f"${s}$")
        lines.append(" & ".join(texts) + r" \\")
    return "\n".join([*lines, r"\hline", r"\end{tabular}"]) + "\n"
