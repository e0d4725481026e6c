"""Work that runs in the background while a page stays responsive: training pairs and repeats
(``training_job``), quick retrains (``retrain``), studies (``study``), Optuna margin searches and
their re-checks (``tune``) and the UMAP projection (``umap``). Each is a ``BackgroundTask``
(``base``): start / stop / wait, one status and one snapshot type. The app runs all but UMAP
through one queue (``queue``): a ``JobRequest`` (``requests``, plain data) per job, run in a
worker process (``worker``)."""
