from django.contrib import admin

from visualsearch.models import DuplicateFlag, DuplicateFlagAction, ImageEmbedding


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
