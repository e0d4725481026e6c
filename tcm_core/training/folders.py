"""What a folder the app lists holds, whatever its kind: a trained pair (``baseline/``,
``tcm/``), repeats (``seed-<n>/`` pairs), an uploaded pair or a single upload. One reading for
the app's pages and the HTML report (``viz.report``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tcm_core.errors import TCMError
from tcm_core.training import runs, uploads
from tcm_core.training.repeats import seed_pairs


@dataclass(frozen=True)
class SingleRun:
    """One uploaded run where a pair is expected: ``baseline`` is the run, ``tcm`` None."""

    root: Path
    name: str

    @property
    def baseline(self) -> Path:
        return self.root

    tcm = None


def config_dict(run_dir) -> dict:
    """A trained run's config (``config.json``) as a dict, or what an uploaded run shows in its place."""
    return uploads.upload_config(run_dir) if uploads.is_upload(run_dir) else runs.load_config(run_dir).to_dict()


def folder_pair(folder, seed: int | None = None, *, strict: bool = False):
    """The pair in ``folder``: an uploaded pair's two uploads; for a single upload a
    ``SingleRun``; for repeats seed ``seed``'s pair (default: the first seed's); else the
    folder's ``RunPair``. ``strict`` (the report): a single upload, a seed the repeats lack or a
    folder without both runs' embeddings is a ``TCMError`` (else an unknown seed means the first)."""
    folder = Path(folder)
    if uploads.is_upload_pair(folder):  # two uploaded runs (before / after)
        return uploads.load_upload_pair(folder)
    if not strict and uploads.is_upload(folder):
        return SingleRun(folder, uploads.load_upload(folder).name)
    seeds = seed_pairs(folder)
    if seeds:
        if strict and seed is not None and seed not in seeds:
            raise TCMError(f"{folder} has no seed {seed}; its seeds: {', '.join(map(str, seeds))}")
        return seeds.get(seed, next(iter(seeds.values())))
    pair = runs.RunPair(folder)
    if strict and not all((side / runs.EMBEDDINGS).is_file() for side in (pair.baseline, pair.tcm)):
        raise TCMError(f"{folder} is not a pair folder: it needs baseline/ and tcm/ runs with "
                       f"{runs.EMBEDDINGS} (or seed-<n>/ pairs of repeats)")
    return pair
