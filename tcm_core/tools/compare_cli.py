"""``python -m tcm_core compare BEFORE AFTER``: two embedding files' R@1, MAP@R, OPIS and
eps-OPIS, and the changes from BEFORE to AFTER with 95% intervals from a paired bootstrap over
the classes both share (``metrics.scores.embedding_pair_changes``). OPIS and eps-OPIS change in
percent, R@1 and MAP@R in points (METHOD.md; ``metrics.change``)."""

from __future__ import annotations

import json

from tcm_core.cli import _add_eval_options, _eval_settings


def add_compare_parser(sub) -> None:
    p = sub.add_parser(
        "compare", help="scores of two embedding files and the changes, with 95%% intervals",
        description="Evaluates BEFORE and AFTER (e.g. a baseline and its +TCM run on the same test "
                    "classes) under the same settings, each with its own calibration range, and "
                    "reports the changes with paired-bootstrap intervals over their shared classes.")
    p.add_argument("before", help=".npz with arrays 'embeddings' (N, D) and 'labels' (N,)")
    p.add_argument("after", help="the same for the run to compare against BEFORE")
    _add_eval_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_compare_cli)


def compare_embeddings(before, after, settings=None) -> dict:
    """``before`` and ``after`` as ``(embeddings, labels)``; a JSON-able dict with ``before``,
    ``after`` (``recall_at_1``, ``map_at_r``, ``opis``, ``eps_opis``, ...), ``changes`` (each
    ``{value, low, high, level, n, method}``) and ``settings``."""
    from tcm_core.metrics import EvalSettings, embedding_set
    from tcm_core.metrics.change import points_change
    from tcm_core.metrics.retrieval import map_at_r_from_set, recall_at_k_from_set
    from tcm_core.metrics.scores import embedding_pair_changes

    settings = settings or EvalSettings()
    base, new, changes = embedding_pair_changes(*before, *after, settings)
    runs = {}
    for name, (x, y), scores in (("before", before, base), ("after", after, new)):
        es = embedding_set(x, y, normalize=settings.normalize)
        c = scores.curves
        runs[name] = {"n": es.n, "dim": es.dim, "n_classes": int(c.classes.size),
                      "recall_at_1": recall_at_k_from_set(es, (1,))[1], "map_at_r": map_at_r_from_set(es),
                      "opis": scores.opis, "eps_opis": scores.eps_opis, "t_min": c.t_min, "t_max": c.t_max}
    map_change = points_change(runs["before"]["map_at_r"], runs["after"]["map_at_r"])
    return {**runs, "changes": {
        "recall_at_1_change_pts": changes.recall_at_1.as_dict(),
        "map_at_r_change_pts": {"value": map_change, "low": None, "high": None, "level": None,
                                "n": None, "method": "point change over all samples (no interval)"},
        "opis_change_pct": changes.opis.as_dict(),
        "eps_opis_change_pct": changes.eps_opis.as_dict()},
        "settings": settings.to_dict()}


def run_compare_cli(args) -> int:
    from tcm_core.io import load_embeddings

    settings = _eval_settings(args)
    result = compare_embeddings(load_embeddings(args.before), load_embeddings(args.after), settings)
    result["before"]["file"], result["after"]["file"] = str(args.before), str(args.after)
    print(json.dumps(result) if args.json else format_comparison(result))
    return 0


def _interval(c: dict, unit: str) -> str:
    if c["value"] is None:
        return "undefined (a score of 0 before)"
    text = f"{c['value']:+.2f}{unit}"
    if c["low"] is not None and c["high"] is not None:
        text += f"  [{c['low']:+.2f} .. {c['high']:+.2f}]"
    return text


def format_comparison(r: dict) -> str:
    b, a, ch = r["before"], r["after"], r["changes"]
    eps = r["settings"]["eps"]
    rows = [("R@1", "recall_at_1", "recall_at_1_change_pts", " pts"),
            ("MAP@R", "map_at_r", "map_at_r_change_pts", " pts"),
            ("OPIS", "opis", "opis_change_pct", "%"),
            (f"{eps:g}-OPIS", "eps_opis", "eps_opis_change_pct", "%")]
    lines = [f"before: {b.get('file', '')} ({b['n']} samples, {b['n_classes']} classes)",
             f"after:  {a.get('file', '')} ({a['n']} samples, {a['n_classes']} classes)",
             f"  {'':<10} {'before':>10} {'after':>10}   change [95% interval]"]
    for label, key, change, unit in rows:
        lines.append(f"  {label:<10} {b[key]:>10.6f} {a[key]:>10.6f}   {_interval(ch[change], unit)}")
    lines.append(f"  intervals: {ch['opis_change_pct']['method']}")
    return "\n".join(lines)
