"""Work that runs in the background while a page stays responsive: training pairs and repeats
(``training_job``), studies (``study``), Optuna margin searches and their re-checks (``tune``)
and the UMAP projection (``umap``). Each is a ``BackgroundTask`` (``base``): start / stop / wait,
one status and one snapshot type."""
