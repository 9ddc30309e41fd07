from rest_framework import serializers

from shop.models import Product
from visualsearch.duplicates.models import DuplicateFlag


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


class FlagListQuerySerializer(serializers.Serializer):
    """Query string of GET /api/duplicates/ (besides ``page``)."""

    status = serializers.ChoiceField(choices=DuplicateFlag.Status.choices, default=DuplicateFlag.Status.OPEN, required=False)
    kind = serializers.ChoiceField(choices=DuplicateFlag.Kind.choices, required=False, help_text="default: both")
    merchant = serializers.SlugField(required=False, help_text="merchant slug (either listing)")
    category = serializers.SlugField(required=False, help_text="category slug, descendants included (either listing)")


class ConfirmRequestSerializer(serializers.Serializer):
    keep = serializers.IntegerField(
        required=False, allow_null=True, help_text="id of the product that stays; default: the older listing"
    )
