"""Geometry of embeddings on the hypersphere (METHOD.md, "The ArcFace toy"): von Mises–Fisher
kernel densities and class centers (``density``), places and grids on the sphere (``sphere``),
and 2-D projections of higher dimensions (``projection``)."""
