"""The API's page-number pagination: DRF's, except that an empty ``page`` is refused.

DRF reads ``?page=`` as page 1 (``params.get("page") or 1``), so a client that lost its page
number silently gets the first page again; the schema says ``page`` is an integer, and any
other invalid page already answers 404 ("Invalid page."). Found by the schema fuzzer.
"""

from __future__ import annotations

from rest_framework import pagination
from rest_framework.exceptions import NotFound


class PageNumberPagination(pagination.PageNumberPagination):
    def get_page_number(self, request, paginator):
        raw = request.query_params.get(self.page_query_param)
        if raw is not None and not raw.strip():
            raise NotFound(self.invalid_page_message.format(page_number=raw, message="The page number is empty."))
        return super().get_page_number(request, paginator)
