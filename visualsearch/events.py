"""What visual search announces; it does not know who listens.

``images_embedded`` is sent with ``product_ids`` and ``model_name`` after product images
were embedded one batch at a time with the active model (the workers' task and the sweep):
the recommender refreshes those products' "Complete the look" and similar strips. The bulk
pipeline (``embed_catalog``) stays silent; ``manage.py compute_looks`` and ``compute_similar``
follow it in bulk.

``active_model_changed`` is sent with ``model_name`` and ``previous_name`` after a promotion
or a rollback committed: the recommender rebuilds the precomputed similar strips, which
belong to one model.
"""

from django.dispatch import Signal

images_embedded = Signal()  # kwargs: product_ids (list[int]), model_name (str)
active_model_changed = Signal()  # kwargs: model_name (str), previous_name (str)
