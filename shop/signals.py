"""What the catalogue announces; it does not know who listens.

``product_images_changed`` is sent with ``image_ids`` when product images are added or their
bytes replaced one at a time (the admin, ``services.product_image_add``): visual search
schedules their embedding. Bulk imports stay silent and leave their (dirty) images to
``embed_catalog`` or the periodic sweep, which batch far better.
"""

from django.dispatch import Signal

product_images_changed = Signal()  # kwargs: image_ids (list[int])
