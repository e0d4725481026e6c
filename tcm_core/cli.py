"""``python -m tcm_core``: the command line. Bad input prints one line and exits 2."""

from __future__ import annotations

import argparse
import json
import sys

from tcm_core.errors import TCMError

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise TCMError(f"{self.prog}: {message} (see --help)")


def _add_eval_options(p: argparse.ArgumentParser) -> None:
    from tcm_core.metrics import EvalSettings

    d = EvalSettings()
    rng = p.add_mutually_exclusive_group()
    rng.add_argument("--far-range", nargs=2, type=float, metavar=("LO", "HI"), default=d.far_range,
                     help="calibration range as a band of global false-accept rate "
                          f"(default {d.far_range[0]:g} {d.far_range[1]:g})")
    rng.add_argument("--distance-range", nargs=2, type=float, metavar=("MIN", "MAX"),
                     help="calibration range in distance units (0..2), instead of --far-range")
    p.add_argument("--num-thresholds", type=int, default=d.num_thresholds, metavar="K",
                   help=f"grid size (default {d.num_thresholds})")
    p.add_argument("--beta", type=float, default=d.beta, help="utility weighting; >1 weighs false rejects more")
    p.add_argument("--eps", type=float, default=d.eps, help=f"share of worst classes for eps-OPIS (default {d.eps:g})")


def _eval_settings(args):
    from tcm_core.metrics import EvalSettings

    return EvalSettings(far_range=tuple(args.far_range),
                        distance_range=tuple(args.distance_range) if args.distance_range else None,
                        num_thresholds=args.num_thresholds, beta=args.beta, eps=args.eps)


def _cmd_evaluate(args) -> int:
    from tcm_core.io import load_embeddings
    from tcm_core.metrics import evaluate, sharded
    from tcm_core.metrics.inputs import default_metric_device
    from tcm_core.training import distributed as ddp

    settings = _eval_settings(args)
    embeddings, labels = load_embeddings(args.file)
    # under torchrun (WORLD_SIZE > 1) the ranks share the pair blocks; rank 0 prints
    rank, _, device = ddp.init(default_metric_device())
    try:
        with sharded.across_ranks():
            result = evaluate(embeddings, labels, settings, device=device)
    finally:
        ddp.shutdown()
    if rank != 0:
        return 0
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(format_evaluation(result, title=str(args.file)))
    return 0


def format_evaluation(r, title: str = "") -> str:
    band = (f"FAR band {r.far_range[0]:g}..{r.far_range[1]:g}" if r.far_range
            else "distance range given")
    lines = [
        title,
        f"  samples {r.n}, dim {r.dim}, usable classes {r.n_classes}"
        + (f" ({r.skipped_classes} with < 2 samples left out)" if r.skipped_classes else ""),
        f"  R@1      {r.recall_at_1:.4f}    MAP@R {r.map_at_r:.4f}",
        f"  OPIS     {r.opis:.6f}  (95% bootstrap over classes: {r.opis_ci[0]:.6f} .. {r.opis_ci[1]:.6f})",
        f"  {r.eps:g}-OPIS {r.eps_opis:.6f}  (95% bootstrap over classes: {r.eps_opis_ci[0]:.6f} .. {r.eps_opis_ci[1]:.6f})",
        f"  calibration range d in [{r.t_min:.4f}, {r.t_max:.4f}] ({band}), "
        f"K={r.num_thresholds}, beta={r.beta:g}",
    ]
    return "\n".join(line for line in lines if line)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m tcm_core", description="TCM Explorer: threshold consistency in deep metric learning")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    ev = sub.add_parser("evaluate", help="R@1, OPIS and eps-OPIS of an .npz of embeddings and labels")
    ev.add_argument("file", help=".npz with arrays 'embeddings' (N, D) and 'labels' (N,)")
    _add_eval_options(ev)
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.set_defaults(func=_cmd_evaluate)
    from tcm_core.tools import add_tool_parsers

    add_tool_parsers(sub)  # threshold, compare, suggest-margins
    try:
        from tcm_core.experiments.study_cli import add_study_parser
        from tcm_core.experiments.tune_cli import add_tune_parser
        from tcm_core.training.cli import add_train_parser
    except ImportError:  # the training engine is optional for evaluation-only installs
        pass
    else:
        add_train_parser(sub)
        add_study_parser(sub)
        add_tune_parser(sub)
    return parser


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except TCMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
