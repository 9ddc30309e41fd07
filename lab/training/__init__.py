"""Metric learning for consumer-to-shop retrieval (plain Python + torch, no Django).

``manage.py train_embedder`` is a thin wrapper around :func:`lab.training.trainer.train`:

* ``split``: the deterministic hold-out of products (and of consumer photos) that training
  never sees and that ``evaluate --holdout`` scores on; torch-free.
* ``features``: an on-disk cache of the frozen backbone's output for every training view
  (catalogue photo, seeded consumer-like views, real second images, consumer photos), so
  epochs run only the head.
* ``losses``: batch-hard / semi-hard triplet mining on cosine distances.
* ``trainer``: batches, the loop, resumable checkpoints, the loss curve, the published model.

The published model (``var/models/<name>/``) is read back by
``visualsearch.embedding.load_embedder(name)``; see ``visualsearch/embedding/finetuned.py``.
"""
