"""The lab: offline measurement and training, never imported by serving code.

* ``datasets``: the shared data (``../shared/data``) read as plain records, in one place;
  ``split``: the deterministic hold-out that training never sees and evaluation scores on;
  ``synthetic``: seeded consumer-like views of catalogue photos; ``cache``: on-disk vector
  caches; ``metrics``, ``reports``, ``plots``, ``cli``: shared arithmetic and output.
* ``evaluation``: retrieval quality (``manage.py evaluate``) and the duplicate detector's
  calibration (``manage.py evaluate_duplicates``).
* ``training``: metric learning of the fine-tuned embedding (``manage.py train_embedder``).
* ``benchmarks``: throughput, nearest-neighbour and HTTP benchmarks (``manage.py bench``,
  ``manage.py load_test``).

The lab may import serving code (it measures it); nothing under ``shop``, ``visualsearch``,
``recommender``, ``storefront`` or ``workers`` imports the lab
(``scripts/import_graph.py`` checks it).
"""
