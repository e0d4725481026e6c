"""Command-line tools over embedding files (``.npz`` with ``embeddings (n, d)`` and
``labels (n,)``, read with ``io.load_embeddings``, never unpickled): ``threshold`` (the global
threshold for a target FAR or FRR and every class's rates there), ``compare`` (two files' scores
and the changes with intervals) and ``suggest-margins`` (TCM's m- and m+ from targets); and over
a pair folder, ``report`` (a self-contained HTML report).

Each module adds one subcommand to ``python -m tcm_core`` (``tcm_core.cli``); bad input raises
``TCMError``, which the CLI prints as one ``error:`` line before exiting 2.
"""

from tcm_core.tools.compare_cli import add_compare_parser
from tcm_core.tools.report_cli import add_report_parser
from tcm_core.tools.suggest_cli import add_suggest_parser
from tcm_core.tools.threshold_cli import add_threshold_parser


def add_tool_parsers(sub) -> None:
    """Add ``threshold``, ``compare``, ``suggest-margins`` and ``report`` to the CLI's subparsers."""
    add_threshold_parser(sub)
    add_compare_parser(sub)
    add_suggest_parser(sub)
    add_report_parser(sub)


__all__ = ["add_compare_parser", "add_report_parser", "add_suggest_parser", "add_threshold_parser", "add_tool_parsers"]
