"""``python -m tcm_core suggest-margins FILE --far A --frr F``: TCM's m- and m+ that penalize a
target share of a baseline's negative and positive pairs (``metrics.suggest``)."""

from __future__ import annotations

import json


def add_suggest_parser(sub) -> None:
    from tcm_core.metrics.suggest import DEFAULT_FAR, DEFAULT_FRR

    p = sub.add_parser(
        "suggest-margins", help="TCM margins m- and m+ from target shares of a baseline's pairs",
        description="Suggests m- = the (1 - FAR) quantile of the baseline's negative-pair cosine "
                    "similarities and m+ = the FRR quantile of its positive-pair similarities (exact), "
                    "with the shares of pairs TCM would penalize at those margins.")
    p.add_argument("file", help="the baseline's .npz with arrays 'embeddings' (N, D) and 'labels' (N,)")
    p.add_argument("--far", type=float, default=DEFAULT_FAR, metavar="A",
                   help=f"share of negative pairs to penalize (s >= m-), default {DEFAULT_FAR:g}")
    p.add_argument("--frr", type=float, default=DEFAULT_FRR, metavar="F",
                   help=f"share of positive pairs to penalize (s <= m+), default {DEFAULT_FRR:g}")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: margin_neg, margin_pos, share_neg, share_pos, ...")
    p.set_defaults(func=run_suggest_cli)


def run_suggest_cli(args) -> int:
    from tcm_core.io import load_embeddings
    from tcm_core.metrics.suggest import suggest_margins

    embeddings, labels = load_embeddings(args.file)
    s = suggest_margins(embeddings, labels, far=args.far, frr=args.frr)
    print(json.dumps(s.to_dict()) if args.json else format_suggestion(s, str(args.file)))
    return 0


def format_suggestion(s, title: str = "") -> str:
    lines = [
        title,
        (f"  m- = {s.margin_neg:.6f}: penalizes {s.share_neg:.4%} of {s.negative_pairs:,} negative pairs "
         f"(s >= m-; target {s.far:g})"),
        (f"  m+ = {s.margin_pos:.6f}: penalizes {s.share_pos:.4%} of {s.positive_pairs:,} positive pairs "
         f"(s <= m+; target {s.frr:g})"),
        f"  train with: --tcm {s.train_options}",
        f"  note: {s.note}" if s.note else "",
    ]
    return "\n".join(line for line in lines if line)
