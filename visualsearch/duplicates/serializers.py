from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from shop.models import Product
from visualsearch.duplicates.models import DuplicateFlag
from visualsearch.duplicates.selectors import FlagFilters
from visualsearch.serializers import FormValuesSerializer


class FlaggedProductSerializer(serializers.ModelSerializer):
    merchant = serializers.CharField(source="merchant.name")
    category = serializers.CharField(source="category.slug")
    url = serializers.CharField(source="get_absolute_url")

    class Meta:
        model = Product
        fields = ["id", "external_id", "title", "merchant", "category", "price", "currency", "status", "created_at", "url"]


class EvidenceSerializer(serializers.Serializer):
    image_a = serializers.IntegerField(source="image_a_id", allow_null=True, help_text="the image of product_a that matched")
    image_b = serializers.IntegerField(source="image_b_id", allow_null=True, help_text="the image of product_b that matched")
    identical_bytes = serializers.SerializerMethodField()
    cosine = serializers.FloatField(help_text="CNN embedding cosine similarity of the two images")
    hash_distance = serializers.IntegerField(help_text="pHash Hamming distance, bits of 256")
    colour_distance = serializers.SerializerMethodField()
    found_by = serializers.SerializerMethodField()

    def get_identical_bytes(self, flag) -> bool:
        return flag.kind == DuplicateFlag.Kind.EXACT

    def get_colour_distance(self, flag) -> float:
        return float(flag.evidence.get("colour_distance", 0.0))

    def get_found_by(self, flag) -> str:
        return flag.evidence.get("found_by", "")


class DuplicateFlagSerializer(serializers.ModelSerializer):
    product_a = FlaggedProductSerializer()
    product_b = FlaggedProductSerializer()
    evidence = EvidenceSerializer(source="*")
    resolved_by = serializers.CharField(
        source="resolved_by.get_username", default=None, allow_null=True, help_text="username of the reviewer; null while open"
    )
    kept_product = serializers.IntegerField(source="kept_product_id", allow_null=True)
    hidden_product = serializers.IntegerField(source="hidden_product_id", allow_null=True)

    class Meta:
        model = DuplicateFlag
        fields = [
            "id", "product_a", "product_b", "kind", "status", "score", "evidence",
            "kept_product", "hidden_product", "resolved_by", "resolved_at", "created_at",
        ]


@extend_schema_field({"type": "string", "pattern": r"^[-a-zA-Z0-9_]*$"})
class OptionalSlugField(serializers.SlugField):
    """A slug, or empty for none."""

    def __init__(self, **kwargs) -> None:
        super().__init__(required=False, allow_blank=True, **kwargs)


class FlagListQuerySerializer(FormValuesSerializer):
    """Query string of GET /api/duplicates/ (besides ``page``). An empty value is the same as
    none (what an HTML form's "any" option sends); a value sent twice is refused."""

    status = serializers.ChoiceField(
        choices=DuplicateFlag.Status.choices, required=False, allow_blank=True, help_text="default: open"
    )
    kind = serializers.ChoiceField(choices=DuplicateFlag.Kind.choices, required=False, allow_blank=True, help_text="default: both")
    merchant = OptionalSlugField(help_text="merchant slug (either listing)")
    category = OptionalSlugField(help_text="category slug, descendants included (either listing)")

    def filters(self) -> FlagFilters:
        data = self.validated_data
        return FlagFilters(
            status=data.get("status") or DuplicateFlag.Status.OPEN,
            kind=data.get("kind") or None,
            merchant=data.get("merchant") or None,
            category=data.get("category") or None,
        )


class ConfirmRequestSerializer(serializers.Serializer):
    keep = serializers.IntegerField(
        required=False, allow_null=True, help_text="id of the product that stays; default: the older listing"
    )
