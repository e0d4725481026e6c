"""``python -m tcm_core threshold FILE --far A | --frr F``: the global distance threshold for a
target rate and every class's FAR and FRR there, worst first (``metrics.thresholds``)."""

from __future__ import annotations

import json

SHOWN_CLASSES = 10  # rows of the readable table; --json and --csv hold them all


def add_threshold_parser(sub) -> None:
    p = sub.add_parser(
        "threshold", help="the global threshold for a target FAR (or FRR), with per-class FAR / FRR",
        description="Finds the largest distance threshold whose global false-accept rate (share of "
                    "negative pairs with d <= t) stays within --far, or the smallest whose global "
                    "false-reject rate stays within --frr, exactly, and reports every class's FAR "
                    "and FRR at it, worst first.")
    p.add_argument("file", help=".npz with arrays 'embeddings' (N, D) and 'labels' (N,)")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--far", type=float, metavar="A",
                        help="target global false-accept rate, e.g. 1e-3: the largest threshold with FAR <= A")
    target.add_argument("--frr", type=float, metavar="F",
                        help="target global false-reject rate, e.g. 0.05: the smallest threshold with FRR <= F")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: threshold, far, frr, classes [{class, size, far, frr}], ...")
    p.add_argument("--csv", metavar="PATH", help="also write the per-class table (class,size,far,frr) to PATH")
    p.set_defaults(func=run_threshold_cli)


def run_threshold_cli(args) -> int:
    from tcm_core.io import load_embeddings
    from tcm_core.metrics.thresholds import find_threshold

    embeddings, labels = load_embeddings(args.file)
    report = find_threshold(embeddings, labels, far=args.far, frr=args.frr)
    if args.csv:
        report.write_csv(args.csv)
    print(json.dumps(report.to_dict()) if args.json else format_threshold(report, str(args.file)))
    return 0


def format_threshold(r, title: str = "") -> str:
    goal = (f"the largest with global FAR <= {r.target_rate:g}" if r.target == "far"
            else f"the smallest with global FRR <= {r.target_rate:g}" if r.target == "frr" else "given")
    kind = r.target or "far"
    shown = r.classes.head(SHOWN_CLASSES)
    lines = [
        title,
        f"  threshold d <= {r.threshold:.6f} (cosine similarity >= {r.similarity:.6f}), {goal}",
        f"  global FAR {r.far:.6g} ({r.negatives_accepted:,} of {r.negative_pairs:,} negative pairs accepted)",
        f"  global FRR {r.frr:.6g} ({r.positives_rejected:,} of {r.positive_pairs:,} positive pairs rejected)",
        f"  classes, highest {kind.upper()} first ({len(shown)} of {len(r.classes)}"
        + ("; --json or --csv for all" if len(shown) < len(r.classes) else "") + "):",
        f"    {'class':<20} {'size':>6} {'FAR':>10} {'FRR':>10}",
    ]
    lines += [f"    {str(c)[:20]:<20} {row.size:>6} {row.far:>10.6f} {row.frr:>10.6f}"
              for c, row in zip(shown.index, shown.itertuples())]
    return "\n".join(line for line in lines if line)
