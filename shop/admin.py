from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AdminFileWidget
from django.db.models import Count
from django.utils.html import format_html

from shop.images import ImageRejected, image_check, max_upload_bytes, too_large_message
from shop.models import Category, Merchant, Product, ProductImage
from shop.signals import product_images_changed


class ProductImageAdminForm(forms.ModelForm):
    """Uploads through the admin get the same checks, hash and embedding as any other.

    The field is a plain file field, not Django's ImageField (which would let Pillow open
    the upload with any of its plugins first): ``shop.images.image_check`` alone decides.
    The stored name is content-addressed (``product_image_path``) and its extension comes
    from the content; the uploader's file name never reaches the filesystem.
    """

    image = forms.FileField(label="Image", widget=AdminFileWidget)

    class Meta:
        model = ProductImage
        fields = ["image", "position", "alt_text"]

    def clean_image(self):
        upload = self.cleaned_data.get("image")
        if upload and "image" in self.changed_data:
            if upload.size is not None and upload.size > max_upload_bytes():
                raise forms.ValidationError(too_large_message())  # refused without reading it
            upload.seek(0)
            try:
                checked = image_check(
                    upload.read(max_upload_bytes() + 1),
                    name=upload.name,
                    content_type=getattr(upload, "content_type", None),
                )
            except ImageRejected as exc:
                raise forms.ValidationError(str(exc)) from exc
            upload.seek(0)
            upload.name = f"upload.{checked.extension}"
            self.instance.sha256 = checked.sha256
            self.instance.width, self.instance.height = checked.width, checked.height
            self.instance.embedding_dirty = True
        return upload


def _announce_changed_images(forms_with_images) -> None:
    ids = [f.instance.pk for f in forms_with_images if f.instance.pk and "image" in f.changed_data]
    if ids:
        product_images_changed.send(sender=ProductImage, image_ids=ids)


@admin.register(Merchant)
class MerchantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "product_count", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_product_count=Count("products"))

    @admin.display(ordering="_product_count", description="products")
    def product_count(self, obj: Merchant) -> int:
        return obj._product_count


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["__str__", "slug", "depth", "product_count"]
    list_filter = ["depth"]
    search_fields = ["name", "slug"]
    list_select_related = ["parent", "parent__parent"]
    autocomplete_fields = ["parent"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_product_count=Count("products"))

    @admin.display(ordering="_product_count", description="products")
    def product_count(self, obj: Category) -> int:
        return obj._product_count


class ProductImageInline(admin.TabularInline):
    model = ProductImage
    form = ProductImageAdminForm
    extra = 0
    fields = ["thumbnail", "image", "position", "alt_text", "width", "height", "sha256"]
    readonly_fields = ["thumbnail", "width", "height", "sha256"]

    @admin.display(description="")
    def thumbnail(self, obj: ProductImage) -> str:
        return format_html('<img src="{}" style="height:64px">', obj.image.url) if obj.image else ""


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["thumbnail", "title", "merchant", "category", "price", "currency", "gender", "colour", "status", "created_at"]
    list_display_links = ["thumbnail", "title"]
    list_filter = ["status", "gender", "merchant", ("category", admin.RelatedOnlyFieldListFilter), "colour"]
    search_fields = ["title", "external_id", "slug", "description"]
    list_select_related = ["merchant", "category"]
    autocomplete_fields = ["merchant", "category"]
    readonly_fields = ["created_at", "updated_at"]
    date_hierarchy = "created_at"
    inlines = [ProductImageInline]
    actions = ["hide", "activate"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("images")

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        if formset.model is ProductImage:
            _announce_changed_images(formset.forms)

    @admin.display(description="")
    def thumbnail(self, obj: Product) -> str:
        image = obj.primary_image
        return format_html('<img src="{}" style="height:48px">', image.image.url) if image else "-"

    @admin.action(description="Hide selected products")
    def hide(self, request, queryset):
        self.message_user(request, f"{queryset.update(status=Product.Status.HIDDEN)} products hidden.")

    @admin.action(description="Activate selected products")
    def activate(self, request, queryset):
        self.message_user(request, f"{queryset.update(status=Product.Status.ACTIVE)} products activated.")


@admin.register(ProductImage)
class ProductImageAdmin(admin.ModelAdmin):
    form = ProductImageAdminForm
    fields = ["product", "image", "position", "alt_text", "width", "height", "sha256", "embedding_dirty"]
    readonly_fields = ["width", "height", "sha256", "embedding_dirty"]
    list_display = ["product", "position", "width", "height", "sha256", "embedding_dirty", "created_at"]
    list_filter = ["embedding_dirty"]
    search_fields = ["product__title", "sha256"]
    list_select_related = ["product"]
    raw_id_fields = ["product"]

    def get_form(self, request, obj=None, **kwargs):
        kwargs["fields"] = ["product", "image", "position", "alt_text"]
        return super().get_form(request, obj, **kwargs)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        _announce_changed_images([form])
