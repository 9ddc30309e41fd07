from django.contrib import admin

from visualsearch.models import DuplicateFlag, DuplicateFlagAction, EmbeddingModel, ImageEmbedding, PhotoSearch


@admin.register(ImageEmbedding)
class ImageEmbeddingAdmin(admin.ModelAdmin):
    list_display = ["image", "product", "model_name", "dim", "updated_at"]
    list_filter = ["model_name", "dim"]
    search_fields = ["product__title"]
    list_select_related = ["image", "product"]
    raw_id_fields = ["image", "product"]
    # Vectors are written by the embedding workers only.
    readonly_fields = ["image", "product", "model_name", "dim", "created_at", "updated_at"]
    exclude = ["vector"]

    def has_add_permission(self, request):
        return False


class DuplicateFlagActionInline(admin.TabularInline):
    model = DuplicateFlagAction
    extra = 0
    can_delete = False
    readonly_fields = ["action", "actor", "at", "details"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(DuplicateFlag)
class DuplicateFlagAdmin(admin.ModelAdmin):
    """Read-only record; reviews happen in the queue (/review/duplicates/), which records who and when."""

    list_display = ["id", "kind", "status", "score", "product_a", "product_b", "resolved_by", "created_at"]
    list_filter = ["status", "kind"]
    search_fields = ["product_a__title", "product_b__title"]
    list_select_related = ["product_a", "product_b", "resolved_by"]
    readonly_fields = [f.name for f in DuplicateFlag._meta.fields]
    inlines = [DuplicateFlagActionInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(EmbeddingModel)
class EmbeddingModelAdmin(admin.ModelAdmin):
    """Read-only: the lifecycle is run from the staff page /staff/models/ (or manage.py models),
    which checks that an index is complete before promoting."""

    list_display = ["name", "state", "index_requested_at", "index_completed_at", "activated_at"]
    list_filter = ["state"]
    readonly_fields = [f.name for f in EmbeddingModel._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(PhotoSearch)
class PhotoSearchAdmin(admin.ModelAdmin):
    """Kept shop-the-look searches (shrunk photos), deleted after their retention period."""

    list_display = ["id", "model_name", "width", "height", "created_at", "expires_at"]
    readonly_fields = ["id", "model_name", "width", "height", "items", "created_at", "expires_at"]
    exclude = ["photo"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
